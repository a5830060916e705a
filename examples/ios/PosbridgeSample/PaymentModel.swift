// SOURCE ONLY — this iOS sample is not built or run by posbridge's CI (there is no Swift toolchain
// on the machine that tests posbridge; the Swift bindings are generated there, not compiled). It
// shows how an app hands posbridge its own CoreBluetooth connection as posbridge's
// `GattPeripheral`, then takes a payment with the generated bindings (`posbridge.swift`, from
// `uniffi-bindgen generate --language swift`, in an XCFramework with the static library; see
// docs/mobile.md). Info.plist needs NSBluetoothAlwaysUsageDescription.

import CoreBluetooth
import Foundation

/// The Nordic UART Service posbridge terminals offer over Bluetooth LE.
let nus = CBUUID(string: "6E400001-B5A3-F393-E0A9-E50E24DCCA9E")
let nusRx = CBUUID(string: "6E400002-B5A3-F393-E0A9-E50E24DCCA9E") // we write
let nusTx = CBUUID(string: "6E400003-B5A3-F393-E0A9-E50E24DCCA9E") // it notifies

/// posbridge's GattPeripheral over a CoreBluetooth peripheral: posbridge chunks to the MTU and
/// paces; this class performs one write at a time.
final class CoreBluetoothPeripheral: GattPeripheral, @unchecked Sendable {
    let peripheral: CBPeripheral
    let rx: CBCharacteristic
    private var pendingWrite: CheckedContinuation<Void, Error>?

    init(peripheral: CBPeripheral, rx: CBCharacteristic) {
        self.peripheral = peripheral
        self.rx = rx
    }

    func attMtu() -> UInt16 {
        // CoreBluetooth gives the largest write, not the MTU: the MTU is 3 more.
        UInt16(peripheral.maximumWriteValueLength(for: .withoutResponse) + 3)
    }

    func write(value: Data, withResponse: Bool) async throws {
        if withResponse {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
                pendingWrite = c
                peripheral.writeValue(value, for: rx, type: .withResponse)
            }
        } else {
            while !peripheral.canSendWriteWithoutResponse {
                try await Task.sleep(nanoseconds: 2_000_000)
            }
            peripheral.writeValue(value, for: rx, type: .withoutResponse)
        }
    }

    func disconnect() async {}

    /// From the delegate's didWriteValueFor.
    func written(error: Error?) {
        if let error { pendingWrite?.resume(throwing: LinkFailure.Closed(detail: error.localizedDescription)) }
        else { pendingWrite?.resume() }
        pendingWrite = nil
    }
}

@MainActor
final class PaymentModel: NSObject, ObservableObject, CBCentralManagerDelegate, CBPeripheralDelegate {
    @Published var status = "not connected"
    private var central: CBCentralManager!
    private var found: CBPeripheral?
    private var bridge: CoreBluetoothPeripheral?
    private let notifier = GattNotifier()
    private var terminal: Terminal?
    private var pairingCode: String?

    /// The journal, keys and pairing: the app's private Application Support directory.
    private var dataDir: String {
        let base = FileManager.default.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        return base.appendingPathComponent("terminal").path
    }

    func connect(pairingCode: String?) {
        self.pairingCode = pairingCode
        central = CBCentralManager(delegate: self, queue: nil)
    }

    nonisolated func centralManagerDidUpdateState(_ central: CBCentralManager) {
        if central.state == .poweredOn { central.scanForPeripherals(withServices: [nus]) }
    }

    nonisolated func centralManager(_ central: CBCentralManager, didDiscover peripheral: CBPeripheral,
                                    advertisementData: [String: Any], rssi RSSI: NSNumber) {
        central.stopScan()
        Task { @MainActor in
            self.found = peripheral
            peripheral.delegate = self
            central.connect(peripheral)
        }
    }

    nonisolated func centralManager(_ central: CBCentralManager, didConnect peripheral: CBPeripheral) {
        peripheral.discoverServices([nus])
    }

    nonisolated func centralManager(_ central: CBCentralManager, didDisconnectPeripheral peripheral: CBPeripheral,
                                    error: Error?) {
        Task { @MainActor in self.notifier.disconnected(reason: error?.localizedDescription ?? "disconnected") }
    }

    nonisolated func peripheral(_ peripheral: CBPeripheral, didDiscoverServices error: Error?) {
        guard let service = peripheral.services?.first(where: { $0.uuid == nus }) else { return }
        peripheral.discoverCharacteristics([nusRx, nusTx], for: service)
    }

    nonisolated func peripheral(_ peripheral: CBPeripheral, didDiscoverCharacteristicsFor service: CBService,
                                error: Error?) {
        guard let rx = service.characteristics?.first(where: { $0.uuid == nusRx }),
              let tx = service.characteristics?.first(where: { $0.uuid == nusTx }) else { return }
        peripheral.setNotifyValue(true, for: tx)
        Task { @MainActor in
            let bridge = CoreBluetoothPeripheral(peripheral: peripheral, rx: rx)
            self.bridge = bridge
            let options = GattOptions(
                dataDir: self.dataDir, pairingCode: self.pairingCode, tillName: "iOS till",
                address: peripheral.identifier.uuidString, name: peripheral.name,
                writeWithoutResponse: rx.properties.contains(.writeWithoutResponse),
                writeWithResponse: rx.properties.contains(.write))
            do {
                self.terminal = try await connectGatt(peripheral: bridge, notifier: self.notifier, options: options)
                self.status = "connected to \(peripheral.name ?? "terminal")"
            } catch {
                self.status = "cannot connect: \(error)"
            }
        }
    }

    nonisolated func peripheral(_ peripheral: CBPeripheral, didUpdateValueFor characteristic: CBCharacteristic,
                                error: Error?) {
        guard characteristic.uuid == nusTx, let value = characteristic.value else { return }
        Task { @MainActor in self.notifier.notification(value: value) }
    }

    nonisolated func peripheral(_ peripheral: CBPeripheral, didWriteValueFor characteristic: CBCharacteristic,
                                error: Error?) {
        Task { @MainActor in self.bridge?.written(error: error) }
    }

    func charge(amount: String) async {
        guard let terminal else { status = "connect first"; return }
        do {
            let result = try await terminal.sale(amount: amount, currency: "EUR", key: nil)
            switch result.outcome {
            case .approved: status = "approved \(result.approvedMinor)"
            case .declined: status = "declined (\(result.declineCode.map(String.init) ?? "?"))"
            default: status = "not paid: \(result.outcome)"
            }
        } catch PosError.InDoubt(let key, _) {
            // Journaled: never charge again under a new key; recover once connected again.
            status = "outcome unknown for \(key): reconnect and recover"
        } catch {
            status = "not charged: \(error)"
        }
    }
}
