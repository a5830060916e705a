// SOURCE ONLY — this Android sample is not built or run by posbridge's CI (there is no Android
// SDK on the machine that tests posbridge). It shows how an app hands posbridge its own Bluetooth
// LE connection (BluetoothLeScanner + BluetoothGatt as posbridge's GattPeripheral) or its own USB
// connection (UsbManager's permission flow + bulk transfers as posbridge's UsbBulk), then takes
// a payment. The posbridge calls are the generated Kotlin bindings (`uniffi.posbridge`), exercised
// on the JVM in CI by crates/posbridge-ffi/kotlin/Main.kt. See docs/mobile.md for the build
// (cargo ndk, JNA's AAR), the permissions and the manifest entries.

package dev.posbridge.sample

import android.annotation.SuppressLint
import android.app.Activity
import android.app.PendingIntent
import android.bluetooth.BluetoothDevice
import android.bluetooth.BluetoothGatt
import android.bluetooth.BluetoothGattCallback
import android.bluetooth.BluetoothGattCharacteristic
import android.bluetooth.BluetoothGattDescriptor
import android.bluetooth.BluetoothManager
import android.bluetooth.BluetoothProfile
import android.bluetooth.le.ScanCallback
import android.bluetooth.le.ScanFilter
import android.bluetooth.le.ScanResult
import android.bluetooth.le.ScanSettings
import android.content.BroadcastReceiver
import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.hardware.usb.UsbConstants
import android.hardware.usb.UsbDevice
import android.hardware.usb.UsbDeviceConnection
import android.hardware.usb.UsbEndpoint
import android.hardware.usb.UsbManager
import android.os.Bundle
import android.os.ParcelUuid
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.MainScope
import kotlinx.coroutines.cancel
import kotlinx.coroutines.launch
import kotlinx.coroutines.withContext
import uniffi.posbridge.GattNotifier
import uniffi.posbridge.GattOptions
import uniffi.posbridge.GattPeripheral
import uniffi.posbridge.LinkFailure
import uniffi.posbridge.PaymentOutcome
import uniffi.posbridge.PosException
import uniffi.posbridge.ProgressListener
import uniffi.posbridge.ProgressUpdate
import uniffi.posbridge.UsbBulk
import uniffi.posbridge.UsbOptions
import uniffi.posbridge.Terminal
import uniffi.posbridge.connectGatt
import uniffi.posbridge.connectUsb
import java.util.UUID

/** The Nordic UART Service posbridge terminals offer over Bluetooth LE. */
private val NUS = UUID.fromString("6e400001-b5a3-f393-e0a9-e50e24dcca9e")
private val NUS_RX = UUID.fromString("6e400002-b5a3-f393-e0a9-e50e24dcca9e") // we write
private val NUS_TX = UUID.fromString("6e400003-b5a3-f393-e0a9-e50e24dcca9e") // it notifies
private val CCCD = UUID.fromString("00002902-0000-1000-8000-00805f9b34fb")

/**
 * posbridge's GattPeripheral over Android's BluetoothGatt: posbridge chunks to the MTU and paces;
 * this class only performs one write at a time and reports notifications to the notifier.
 */
@SuppressLint("MissingPermission") // BLUETOOTH_CONNECT is requested before connecting
class AndroidPeripheral(
    private val gatt: BluetoothGatt,
    private val rx: BluetoothGattCharacteristic,
    @Volatile var mtu: Int,
) : GattPeripheral {
    @Volatile var pendingWrite: CompletableDeferred<Boolean>? = null

    override fun attMtu(): UShort = mtu.toUShort()

    override suspend fun write(value: ByteArray, withResponse: Boolean) {
        val done = CompletableDeferred<Boolean>()
        pendingWrite = done
        val type = if (withResponse) BluetoothGattCharacteristic.WRITE_TYPE_DEFAULT
        else BluetoothGattCharacteristic.WRITE_TYPE_NO_RESPONSE
        val status = gatt.writeCharacteristic(rx, value, type) // API 33+
        if (status != BluetoothGatt.GATT_SUCCESS) throw LinkFailure.Closed("write refused: $status")
        if (!done.await()) throw LinkFailure.Closed("write failed")
    }

    override suspend fun disconnect() {
        gatt.disconnect()
        gatt.close()
    }
}

/**
 * posbridge's UsbBulk over a USB device's bulk endpoints (a terminal's vendor interface):
 * posbridge queues the transfers, segments messages into packets and handles zero-length
 * packets; this class performs one transfer at a time per direction.
 */
class AndroidUsbBulk(
    private val connection: UsbDeviceConnection,
    private val bulkIn: UsbEndpoint,
    private val bulkOut: UsbEndpoint,
) : UsbBulk {
    @Volatile private var closed = false

    override fun outMaxPacket(): UInt = bulkOut.maxPacketSize.toUInt()

    override fun inMaxPacket(): UInt = bulkIn.maxPacketSize.toUInt()

    override suspend fun bulkOut(data: ByteArray) = withContext(Dispatchers.IO) {
        if (connection.bulkTransfer(bulkOut, data, data.size, 5000) < 0) {
            throw LinkFailure.Closed("USB bulk OUT failed")
        }
    }

    override suspend fun bulkIn(max: UInt): ByteArray = withContext(Dispatchers.IO) {
        val buf = ByteArray(max.toInt())
        var n: Int
        // bulkTransfer returns -1 on a timeout as on an error: wait until data or closing.
        do {
            n = connection.bulkTransfer(bulkIn, buf, buf.size, 1000)
        } while (n < 0 && !closed)
        if (n < 0) throw LinkFailure.Closed("USB device closed")
        buf.copyOf(n)
    }

    fun close() {
        closed = true
        connection.close()
    }
}

class PaymentActivity : Activity() {
    private val scope: CoroutineScope = MainScope()
    private lateinit var status: TextView
    private var terminal: Terminal? = null

    /** The journal, keys and pairing: private app storage, never shared storage. */
    private val dataDir get() = filesDir.resolve("terminal").absolutePath

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        status = TextView(this)
        val amount = EditText(this).apply { hint = "12.50" }
        val code = EditText(this).apply { hint = "pairing code (first time only)" }
        val viaBle = Button(this).apply { text = "Connect over Bluetooth" }
        val viaUsb = Button(this).apply { text = "Connect over USB" }
        val pay = Button(this).apply { text = "Charge" }
        setContentView(LinearLayout(this).apply {
            orientation = LinearLayout.VERTICAL
            listOf(status, code, viaBle, viaUsb, amount, pay).forEach { addView(it) }
        })
        viaBle.setOnClickListener { scanAndConnect(code.text.toString().ifBlank { null }) }
        viaUsb.setOnClickListener { connectUsb(code.text.toString().ifBlank { null }) }
        pay.setOnClickListener { charge(amount.text.toString()) }
    }

    override fun onDestroy() {
        scope.cancel()
        super.onDestroy()
    }

    private fun show(text: String) = runOnUiThread { status.text = text }

    @SuppressLint("MissingPermission") // BLUETOOTH_SCAN / BLUETOOTH_CONNECT requested at start
    private fun scanAndConnect(pairingCode: String?) {
        val adapter = getSystemService(BluetoothManager::class.java).adapter
        val scanner = adapter.bluetoothLeScanner
        val filter = ScanFilter.Builder().setServiceUuid(ParcelUuid(NUS)).build()
        val settings = ScanSettings.Builder().setScanMode(ScanSettings.SCAN_MODE_LOW_LATENCY).build()
        show("searching for a terminal …")
        scanner.startScan(listOf(filter), settings, object : ScanCallback() {
            override fun onScanResult(callbackType: Int, result: ScanResult) {
                scanner.stopScan(this)
                connectGattTo(result.device, pairingCode)
            }
        })
    }

    @SuppressLint("MissingPermission")
    private fun connectGattTo(device: BluetoothDevice, pairingCode: String?) {
        val notifier = GattNotifier()
        var peripheral: AndroidPeripheral? = null
        device.connectGatt(this, false, object : BluetoothGattCallback() {
            override fun onConnectionStateChange(gatt: BluetoothGatt, status: Int, newState: Int) {
                if (newState == BluetoothProfile.STATE_CONNECTED) gatt.requestMtu(247)
                if (newState == BluetoothProfile.STATE_DISCONNECTED) notifier.disconnected("status $status")
            }

            override fun onMtuChanged(gatt: BluetoothGatt, mtu: Int, status: Int) {
                peripheral?.mtu = mtu
                if (peripheral == null) gatt.discoverServices()
            }

            override fun onServicesDiscovered(gatt: BluetoothGatt, status: Int) {
                val service = gatt.getService(NUS) ?: return notifier.disconnected("no NUS service")
                val tx = service.getCharacteristic(NUS_TX)
                gatt.setCharacteristicNotification(tx, true)
                gatt.writeDescriptor(tx.getDescriptor(CCCD), BluetoothGattDescriptor.ENABLE_NOTIFICATION_VALUE)
                val rx = service.getCharacteristic(NUS_RX)
                val p = AndroidPeripheral(gatt, rx, 23).also { peripheral = it }
                scope.launch {
                    try {
                        terminal = connectGatt(
                            p, notifier,
                            GattOptions(dataDir, pairingCode, "Android till", device.address, device.name,
                                rx.properties and BluetoothGattCharacteristic.PROPERTY_WRITE_NO_RESPONSE != 0,
                                rx.properties and BluetoothGattCharacteristic.PROPERTY_WRITE != 0),
                        )
                        show("connected over Bluetooth to ${device.name}")
                    } catch (e: PosException) {
                        show("cannot connect: ${e.message}")
                    }
                }
            }

            override fun onCharacteristicWrite(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, status: Int) {
                peripheral?.pendingWrite?.complete(status == BluetoothGatt.GATT_SUCCESS)
            }

            override fun onCharacteristicChanged(gatt: BluetoothGatt, c: BluetoothGattCharacteristic, value: ByteArray) {
                if (c.uuid == NUS_TX) notifier.notification(value)
            }
        })
    }

    private fun connectUsb(pairingCode: String?) {
        val usb = getSystemService(UsbManager::class.java)
        val device = usb.deviceList.values.firstOrNull() ?: return show("no USB terminal attached")
        val action = "dev.posbridge.sample.USB_PERMISSION"
        registerReceiver(object : BroadcastReceiver() {
            override fun onReceive(context: Context, intent: Intent) {
                unregisterReceiver(this)
                if (!intent.getBooleanExtra(UsbManager.EXTRA_PERMISSION_GRANTED, false)) {
                    return show("USB permission refused")
                }
                openUsb(usb, device, pairingCode)
            }
        }, IntentFilter(action), RECEIVER_NOT_EXPORTED)
        usb.requestPermission(device, PendingIntent.getBroadcast(this, 0, Intent(action), PendingIntent.FLAG_IMMUTABLE))
    }

    private fun openUsb(usb: UsbManager, device: UsbDevice, pairingCode: String?) {
        val iface = (0 until device.interfaceCount).map { device.getInterface(it) }
            .first { it.interfaceClass == UsbConstants.USB_CLASS_VENDOR_SPEC }
        val endpoints = (0 until iface.endpointCount).map { iface.getEndpoint(it) }
        val bulkIn = endpoints.first { it.type == UsbConstants.USB_ENDPOINT_XFER_BULK && it.direction == UsbConstants.USB_DIR_IN }
        val bulkOut = endpoints.first { it.type == UsbConstants.USB_ENDPOINT_XFER_BULK && it.direction == UsbConstants.USB_DIR_OUT }
        val connection = usb.openDevice(device) ?: return show("cannot open the USB device")
        connection.claimInterface(iface, true)
        scope.launch {
            try {
                terminal = connectUsb(
                    AndroidUsbBulk(connection, bulkIn, bulkOut),
                    UsbOptions(dataDir, pairingCode, "Android till", "USB ${device.deviceName}"),
                )
                show("connected over USB")
            } catch (e: PosException) {
                show("cannot connect: ${e.message}")
            }
        }
    }

    private fun charge(amount: String) {
        val t = terminal ?: return show("connect first")
        t.setProgressListener(object : ProgressListener {
            override fun onProgress(update: ProgressUpdate) = show("… ${update.stage}")
        })
        scope.launch {
            try {
                val result = t.sale(amount, "EUR", null)
                show(when (result.outcome) {
                    PaymentOutcome.APPROVED -> "approved ${result.approvedMinor} (${result.maskedPan ?: "card"})"
                    PaymentOutcome.DECLINED -> "declined (${result.declineCode})"
                    else -> "not paid: ${result.outcome}"
                })
            } catch (e: PosException.InDoubt) {
                // Journaled: never charge again under a new key; recover once connected again.
                show("outcome unknown for ${e.key}: reconnect and recover")
            } catch (e: PosException) {
                show("not charged: ${e.message}")
            }
        }
    }
}
