"""posbridge's Python bindings against the embedded simulator: pairing, sale, refund with an
operator, pre-authorisation and capture, cancel mid-payment, a lost answer recovered exactly
once, progress events, settlement, and typed errors for bad input."""

import asyncio
import os
import tempfile
import threading

import pytest

import posbridge

MANAGER = posbridge.Operator(name="manager", pin="2468")


class SocketStream(posbridge.ByteStream):
    """An app's own transport: an asyncio socket."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.carried = 0

    async def read(self, max):
        data = await self.reader.read(max)
        self.carried += len(data)
        return data

    async def write(self, data):
        self.writer.write(data)
        await self.writer.drain()
        self.carried += len(data)

    async def shut(self):
        self.writer.close()


def run(coro):
    """Runs `coro` in a new event loop that posbridge's callbacks and futures use (UniFFI keeps
    the loop it was last given, so every new loop must be given to it)."""
    from posbridge.posbridge import uniffi_set_event_loop

    async def main():
        uniffi_set_event_loop(asyncio.get_running_loop())
        return await coro

    return asyncio.run(main())


async def paired(card_delay_ms=0):
    sim = await posbridge.start_simulator(card_delay_ms)
    data = tempfile.mkdtemp(prefix="posbridge-py-")
    terminal = await posbridge.connect(
        posbridge.ConnectOptions(
            address=sim.address(), data_dir=data, pairing_code=sim.pairing_code(), till_name="pytest"
        )
    )
    return sim, data, terminal


def test_version():
    assert posbridge.version().count(".") == 2


def test_sale_refund_preauth_capture_and_settlement():
    async def scenario():
        sim, _, t = await paired()
        sale = await t.sale("12.50", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED
        assert (sale.amount_minor, sale.approved_minor, sale.currency) == (1250, 1250, "EUR")
        assert sale.signed, "the terminal's signature was verified before journaling"
        assert len(sale.key) == 32

        # The same key again is the same payment, not a second one.
        again = await t.sale("12.50", "EUR", sale.key)
        assert again.transaction_id == sale.transaction_id

        refund = await t.refund("2.50", "EUR", sale.key, MANAGER, None)
        assert (refund.kind, refund.outcome) == ("refund", posbridge.PaymentOutcome.APPROVED)

        hold = await t.preauth("80.00", "EUR", None)
        assert hold.kind == "pre_auth"
        capture = await t.capture(hold.key, "64.20", "EUR", MANAGER, None)
        assert (capture.kind, capture.approved_minor) == ("capture", 6420)

        declined = await t.sale("20.51", "EUR", None)
        assert declined.outcome == posbridge.PaymentOutcome.DECLINED
        assert declined.decline_code is not None

        entries = t.journal()
        assert [e.state for e in entries].count("done") == 5
        assert t.in_doubt() == []

        settlement = await t.settle(MANAGER)
        assert settlement.reconciled
        assert any(x.kind == "sale" and x.amount_minor >= 1250 for x in settlement.totals)
        assert sim.transactions() == 0, "the batch is closed"
        await t.disconnect()

    run(scenario())


def test_bad_input_gets_typed_errors():
    async def scenario():
        _, data, t = await paired()
        with pytest.raises(posbridge.PosError.InvalidInput):
            await t.sale("-1.00", "EUR", None)
        with pytest.raises(posbridge.PosError.InvalidInput):
            await t.sale("1.00", "EURO", None)
        with pytest.raises(posbridge.PosError.InvalidInput):
            await t.sale("1.005", "EUR", None)
        with pytest.raises(posbridge.PosError.InvalidInput):
            await t.sale("1.00", "EUR", "not a key")
        # A refund without an operator is refused by the terminal; nothing is charged.
        with pytest.raises(posbridge.PosError.Refused) as refused:
            await t.refund("1.00", "EUR", None, None, None)
        assert refused.value.code != 0
        with pytest.raises(posbridge.PosError.InvalidInput):
            await t.refund("1.00", "EUR", None, posbridge.Operator(name="manager", pin="12"), None)
        await t.disconnect()
        assert t.journal is not None

        # A data directory without a pairing, and no code.
        sim = await posbridge.start_simulator(0)
        with pytest.raises(posbridge.PosError.NotPaired):
            await posbridge.connect(
                posbridge.ConnectOptions(
                    address=sim.address(), data_dir=tempfile.mkdtemp(), pairing_code=None, till_name="x"
                )
            )
        # Nothing listening.
        with pytest.raises(posbridge.PosError.ConnectFailed):
            await posbridge.connect(
                posbridge.ConnectOptions(address="127.0.0.1:9", data_dir=data, pairing_code=None, till_name="x")
            )

    run(scenario())


def test_cancel_mid_payment_and_progress_events():
    class Listener(posbridge.ProgressListener):
        def __init__(self):
            self.stages = []
            self.threads = set()

        def on_progress(self, update):
            self.stages.append(update.stage)
            self.threads.add(threading.current_thread().name)

    async def scenario():
        _, _, t = await paired(card_delay_ms=1500)
        listener = Listener()
        t.set_progress_listener(listener)
        running = asyncio.ensure_future(t.sale("40.00", "EUR", None))
        await asyncio.sleep(0.5)
        await t.cancel()
        result = await running
        assert result.outcome == posbridge.PaymentOutcome.CANCELLED
        assert result.approved_minor == 0
        assert "WaitingForCard" in listener.stages, listener.stages
        await t.disconnect()

    run(scenario())


def test_a_lost_answer_is_in_doubt_then_recovered_exactly_once():
    async def scenario():
        sim, data, t = await paired()
        sim.drop_answers(1)
        with pytest.raises(posbridge.PosError.InDoubt) as lost:
            await t.sale("33.30", "EUR", None)
        key = lost.value.key
        assert [e.key for e in t.in_doubt()] == [key]
        await t.disconnect()

        # Connected again from the same data directory (its pairing and journal).
        t = await posbridge.connect(
            posbridge.ConnectOptions(address=sim.address(), data_dir=data, pairing_code=None, till_name="pytest")
        )
        report = await t.recover()
        assert report.recorded == [key], report
        assert report.unresolved == []
        status = await t.status(key)
        assert status is not None and status.outcome == posbridge.PaymentOutcome.APPROVED
        # Retrying the payment under its key books nothing new.
        again = await t.sale("33.30", "EUR", key)
        assert again.transaction_id == status.transaction_id
        assert sim.transactions() == 1, "charged exactly once"
        await t.disconnect()

    run(scenario())


def test_a_python_socket_as_the_link():
    """The app brings its own transport: an asyncio socket, implemented in Python."""
    from posbridge.posbridge import uniffi_set_event_loop

    async def scenario():
        # posbridge calls the stream's async methods from its own threads: they run on this loop.
        uniffi_set_event_loop(asyncio.get_running_loop())
        sim = await posbridge.start_simulator(0)
        host, port = sim.address().rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        stream = SocketStream(reader, writer)
        data = tempfile.mkdtemp(prefix="posbridge-py-stream-")
        t = await posbridge.connect_stream(
            stream,
            posbridge.StreamOptions(
                data_dir=data, pairing_code=sim.pairing_code(), till_name="pytest", description="asyncio socket"
            ),
        )
        sale = await t.sale("7.77", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED and sale.signed
        assert stream.carried > 0, "every byte went through the Python stream"
        await t.disconnect()

        # The same data directory again, over a new Python socket: the pairing is kept.
        reader, writer = await asyncio.open_connection(host, int(port))
        t = await posbridge.connect_stream(
            SocketStream(reader, writer),
            posbridge.StreamOptions(data_dir=data, pairing_code=None, till_name="pytest", description="again"),
        )
        assert (await t.status(sale.key)).transaction_id == sale.transaction_id
        await t.disconnect()

    run(scenario())


def test_a_python_gatt_peripheral_as_the_link():
    """An app's own Bluetooth LE connection handed to posbridge: a NUS bridge to the simulator
    over a socket stands in for the radio (notifications of at most MTU - 3 bytes)."""
    from posbridge.posbridge import uniffi_set_event_loop

    MTU = 23

    class Bridge(posbridge.GattPeripheral):
        def __init__(self, writer):
            self.writer = writer
            self.sizes = []

        def att_mtu(self):
            return MTU

        async def write(self, value, with_response):
            assert len(value) <= MTU - 3, len(value)
            self.sizes.append(len(value))
            self.writer.write(value)
            await self.writer.drain()

        async def disconnect(self):
            self.writer.close()

    async def scenario():
        uniffi_set_event_loop(asyncio.get_running_loop())
        sim = await posbridge.start_simulator(0)
        host, port = sim.address().rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        notifier = posbridge.GattNotifier()

        async def radio():
            while True:
                data = await reader.read(MTU - 3)
                if not data:
                    notifier.disconnected("the bridge's socket closed")
                    return
                notifier.notification(data)

        pump = asyncio.ensure_future(radio())
        bridge = Bridge(writer)
        t = await posbridge.connect_gatt(
            bridge,
            notifier,
            posbridge.GattOptions(
                data_dir=tempfile.mkdtemp(prefix="posbridge-py-gatt-"),
                pairing_code=sim.pairing_code(),
                till_name="pytest",
                address="00:11:22:33:44:55",
                name="NUS bridge",
                write_without_response=True,
                write_with_response=True,
            ),
        )
        sale = await t.sale("19.99", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED and sale.signed
        assert max(bridge.sizes) == MTU - 3 and len(bridge.sizes) > 10
        await t.disconnect()
        await asyncio.wait_for(pump, 5)

    run(scenario())


def test_zvt_and_nexo_terminals_through_the_same_object():
    """One API over every protocol: a ZVT terminal and a nexo (Adyen Terminal API) terminal,
    each the embedded simulator behind posbridge's terminal role for that protocol."""

    async def scenario():
        zvt_sim = await posbridge.start_zvt_simulator()
        zvt = await posbridge.connect_zvt(zvt_sim.address(), 0, tempfile.mkdtemp(prefix="posbridge-py-zvt-"))
        sale = await zvt.sale("12.50", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED and not sale.signed
        declined = await zvt.sale("20.51", "EUR", None)
        assert declined.outcome == posbridge.PaymentOutcome.DECLINED
        refund = await zvt.refund("5.00", "EUR", None, None, None)
        assert refund.kind == "refund"
        settlement = await zvt.settle(None)
        assert settlement.reconciled, settlement
        await zvt.disconnect()

        nexo_sim = await posbridge.start_nexo_simulator("pytest", "a shared passphrase")
        options = posbridge.NexoOptions(
            address=nexo_sim.address(),
            poi_id=nexo_sim.poi_id(),
            sale_id="pytest",
            key_identifier="pytest",
            key_version=1,
            passphrase="a shared passphrase",
            trust=posbridge.NexoTrust.ROOT(pem=nexo_sim.root_certificate_pem(), live=False),
            data_dir=tempfile.mkdtemp(prefix="posbridge-py-nexo-"),
        )
        nexo = await posbridge.connect_nexo(options)
        sale = await nexo.sale("9.99", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED
        void = await nexo.void(sale.key, None, None)
        assert (void.kind, void.outcome) == ("void", posbridge.PaymentOutcome.APPROVED)
        await nexo.disconnect()

        # A wrong passphrase is found when connecting, before any payment.
        options.passphrase = "not the passphrase"
        with pytest.raises(posbridge.PosError.ConnectFailed) as e:
            await posbridge.connect_nexo(options)
        assert "HMAC" in str(e.value) or "passphrase" in str(e.value), e.value

    run(scenario())


def test_keys_in_the_apps_own_store():
    """The till's identity and pairing kept by the app (as in a platform keystore), never in
    files; a second connection finds the pairing there."""

    class Store(posbridge.SecretStore):
        def __init__(self):
            self.secrets = {}

        def load(self, name):
            return self.secrets.get(name)

        def store(self, name, secret):
            self.secrets[name] = bytes(secret)

        def delete(self, name):
            return self.secrets.pop(name, None) is not None

        def names(self):
            return sorted(self.secrets)

    async def scenario():
        sim = await posbridge.start_simulator(0)
        store = Store()
        data = tempfile.mkdtemp(prefix="posbridge-py-store-")
        options = posbridge.ConnectOptions(
            address=sim.address(), data_dir=data, pairing_code=sim.pairing_code(), till_name="pytest"
        )
        t = await posbridge.connect_with_store(options, store)
        sale = await t.sale("4.20", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED
        await t.disconnect()
        assert len(store.secrets) >= 2, store.names()  # the identity and the pairing
        assert not os.path.exists(os.path.join(data, "keys")), "no key file was written"

        options.pairing_code = None
        t = await posbridge.connect_with_store(options, store)
        assert (await t.status(sale.key)).transaction_id == sale.transaction_id
        await t.disconnect()
        # Without the store's pairing: not paired.
        with pytest.raises(posbridge.PosError.NotPaired):
            await posbridge.connect_with_store(options, Store())

        # The app's own stream with the app's own store.
        sim = await posbridge.start_simulator(0)
        host, port = sim.address().rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        stream_store, stream_data = Store(), tempfile.mkdtemp(prefix="posbridge-py-store-stream-")
        t = await posbridge.connect_stream(
            SocketStream(reader, writer),
            posbridge.StreamOptions(
                data_dir=stream_data, pairing_code=sim.pairing_code(), till_name="pytest", description="socket"
            ),
            stream_store,
        )
        assert (await t.sale("1.50", "EUR", None)).outcome == posbridge.PaymentOutcome.APPROVED
        await t.disconnect()
        assert len(stream_store.secrets) >= 2
        assert not os.path.exists(os.path.join(stream_data, "keys"))

    run(scenario())


def test_pairing_from_a_handover_uri():
    """The QR code (or NFC tag) a terminal shows: read it, then pair without typing."""

    async def scenario():
        sim = await posbridge.start_simulator(0)
        uri = sim.handover_uri()
        assert uri.startswith("posbridge://"), uri
        info = posbridge.read_handover(uri)
        assert info.can_pair and info.tcp == [sim.address()] and len(info.terminal_id) == 32
        data = tempfile.mkdtemp(prefix="posbridge-py-handover-")
        t = await posbridge.connect_handover(uri, data, "pytest")
        assert (await t.sale("1.00", "EUR", None)).outcome == posbridge.PaymentOutcome.APPROVED
        await t.disconnect()
        # Paired: the data directory reconnects without the URI.
        t = await posbridge.connect(
            posbridge.ConnectOptions(address=sim.address(), data_dir=data, pairing_code=None, till_name="pytest")
        )
        await t.disconnect()
        with pytest.raises(posbridge.PosError.InvalidInput):
            posbridge.read_handover("https://example.invalid/not-a-handover")

    run(scenario())


def test_tls_with_a_pin_progress_as_a_stream_and_connection_state():
    async def scenario():
        sim = await posbridge.start_simulator(300)
        tls = await sim.listen_tls()
        data = tempfile.mkdtemp(prefix="posbridge-py-tls-")
        t = await posbridge.connect(
            posbridge.ConnectOptions(
                address=tls.address, data_dir=data, pairing_code=sim.pairing_code(), till_name="pytest", tls_pin=tls.pin
            )
        )
        assert t.is_connected()

        stages = []

        async def watch():
            while (update := await t.next_progress()) is not None:
                stages.append(update.stage)

        watcher = asyncio.ensure_future(watch())
        sale = await t.sale("3.00", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED
        await asyncio.sleep(0.1)
        assert "WaitingForCard" in stages, stages
        await t.disconnect()
        assert not t.is_connected()
        assert await asyncio.wait_for(watcher, 5) is None, "the stream ends with the connection"

        # A wrong pin is refused before anything is sent.
        with pytest.raises(posbridge.PosError.ConnectFailed):
            await posbridge.connect(
                posbridge.ConnectOptions(
                    address=tls.address, data_dir=data, pairing_code=None, till_name="pytest", tls_pin="00" * 32
                )
            )

    run(scenario())


def test_the_journal_exports_as_json_lines_and_csv():
    import csv
    import io
    import json

    async def scenario():
        _, _, t = await paired()
        sale = await t.sale("12.34", "EUR", None)
        await t.sale("20.51", "EUR", None)
        lines = [json.loads(line) for line in t.export_journal(False).splitlines()]
        assert [l["outcome"] for l in lines] == ["approved", "declined"], lines
        first = lines[0]
        assert (first["idempotency_key"], first["amount_minor"], first["signature"]) == (sale.key, "1234", "valid")
        assert first["transaction_id"] == sale.transaction_id
        rows = list(csv.DictReader(io.StringIO(t.export_journal(True))))
        assert [r["outcome"] for r in rows] == ["approved", "declined"]
        await t.disconnect()

    run(scenario())


def test_a_python_usb_bulk_pair_as_the_link():
    """An app's own USB connection (the bulk transfers its USB stack performs, in Python) to the
    simulator as a USB device (64-byte packets; messages segmented)."""

    class Bulk(posbridge.UsbBulk):
        def __init__(self, device):
            self.device = device
            self.outs, self.ins = [], []

        def out_max_packet(self):
            return self.device.max_packet()

        def in_max_packet(self):
            return self.device.max_packet()

        async def bulk_out(self, data):
            self.outs.append(len(data))
            await self.device.bulk_out(data)

        async def bulk_in(self, max):
            packet = await self.device.bulk_in(max)
            self.ins.append(len(packet))
            return packet

    async def scenario():
        sim = await posbridge.start_simulator(0)
        bulk = Bulk(sim.usb_device())
        t = await posbridge.connect_usb(
            bulk,
            posbridge.UsbOptions(
                data_dir=tempfile.mkdtemp(prefix="posbridge-py-usb-"),
                pairing_code=sim.pairing_code(),
                till_name="pytest",
                description="USB 1234:5678",
            ),
        )
        sale = await t.sale("6.66", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED and sale.signed
        assert max(bulk.outs) == 64 and max(bulk.ins) <= 64, (bulk.outs, bulk.ins)
        assert len(bulk.outs) > 10, "messages were segmented into packets"
        await t.disconnect()

    run(scenario())


def test_a_serial_port_opened_by_posbridge():
    """A desktop till on a serial line: a pseudo-terminal pair with the simulator on one end."""

    async def scenario():
        sim = await posbridge.start_simulator(0)
        path = sim.serial_port()
        data = tempfile.mkdtemp(prefix="posbridge-py-serial-")
        t = await posbridge.connect_serial(path, 115200, data, sim.pairing_code(), "pytest")
        sale = await t.sale("8.80", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED and sale.signed
        await t.disconnect()
        with pytest.raises(posbridge.PosError.ConnectFailed):
            await posbridge.connect_serial("/dev/posbridge-no-such-port", 9600, data, None, "pytest")
        with pytest.raises(posbridge.PosError.ConnectFailed):
            sim.serve_serial_port("/dev/posbridge-no-such-port", 9600)

    run(scenario())


def test_what_the_terminal_is_discovery_and_connecting_to_a_found_device():
    """`info` tells what the terminal accepts; `discover` lists devices and says which transports
    it could not search (here: BLE and USB are not built into this wheel); `connect_device`
    reaches a device by what discovery returns, over TCP and a serial port."""

    async def scenario():
        sim, _, t = await paired()
        info = t.info()
        assert len(info.terminal_id) == 32 and int(info.terminal_id, 16) >= 0
        assert {"sale", "refund", "void", "pre_auth", "capture"} <= set(info.kinds)
        assert "EUR" in info.currencies and info.protocol_version >= 1
        assert all(lim.min_minor <= lim.max_minor for lim in info.limits)
        await t.disconnect()

        found = await posbridge.discover(
            posbridge.DiscoverOptions(timeout_ms=200, lan=False, serial=True, ble=True, usb=True)
        )
        missing = {p.transport for p in found.problems}
        assert {posbridge.Transport.BLE, posbridge.Transport.USB} <= missing, found.problems
        assert all("connect_gatt" in p.detail or "connect_usb" in p.detail for p in found.problems
                   if p.transport in (posbridge.Transport.BLE, posbridge.Transport.USB))
        assert all(d.transport == posbridge.Transport.SERIAL for d in found.devices), found.devices

        # A LAN terminal as mDNS would report it (a second simulator: the first one's pairing
        # window is spent), and the same simulator's serial port.
        sim = await posbridge.start_simulator(0)
        lan = posbridge.Device(transport=posbridge.Transport.TCP, id=sim.address(), name="sim",
                               rssi_dbm=None, usb_vendor_id=None, usb_product_id=None,
                               usb_serial_number=None)
        data = tempfile.mkdtemp(prefix="posbridge-py-device-")
        t = await posbridge.connect_device(
            lan, posbridge.DeviceOptions(data_dir=data, pairing_code=sim.pairing_code(),
                                         till_name="pytest"))
        assert len(t.info().terminal_id) == 32
        assert (await t.sale("3.00", "EUR", None)).outcome == posbridge.PaymentOutcome.APPROVED
        await t.disconnect()

        port = posbridge.Device(transport=posbridge.Transport.SERIAL, id=sim.serial_port(),
                                name=None, rssi_dbm=None, usb_vendor_id=None, usb_product_id=None,
                                usb_serial_number=None)
        # Paired above: the pairing kept in the data directory is used over the serial line.
        t = await posbridge.connect_device(
            port, posbridge.DeviceOptions(data_dir=data, pairing_code=None, till_name="pytest"))
        assert (await t.sale("4.00", "EUR", None)).outcome == posbridge.PaymentOutcome.APPROVED
        assert len(t.journal()) == 2
        await t.disconnect()

        with pytest.raises(posbridge.PosError.InvalidInput):
            ble = posbridge.Device(transport=posbridge.Transport.BLE, id="AA:BB:CC:DD:EE:FF",
                                   name=None, rssi_dbm=None, usb_vendor_id=None,
                                   usb_product_id=None, usb_serial_number=None)
            await posbridge.connect_device(
                ble, posbridge.DeviceOptions(data_dir=data, pairing_code=None, till_name="pytest"))

    run(scenario())


def test_the_terminal_beyond_payments_status_lease_cart_and_customer():
    """Protocol 1.1 from Python: the terminal's status, its lease, the cart on the customer
    display, questions for the customer; and the offline fields of a recovery report."""

    async def scenario():
        sim, _, t = await paired()
        status = await t.terminal_status()
        assert status is not None, "a 1.1 terminal reports its status"
        assert (status.battery_percent, status.power, status.paper) == (87, "battery", "ok")
        assert status.acquirer_online and status.stored_offline == 0
        assert status.firmware and status.app_version

        lease = await t.acquire("Till 1", 60, None)
        assert lease.state == "granted" and lease.expires_in_ms > 0, lease
        assert lease.holder is None

        shown = await t.show_cart(
            [
                posbridge.CartItem(text="Cappuccino", quantity=2, amount="7.60"),
                posbridge.CartItem(text="Croissant", quantity=None, amount="2.40"),
            ],
            "10.00",
            "EUR",
            "Thank you!",
        )
        assert shown

        # The simulated customer picks the second preset: 15 % of 10.00.
        tip = await t.ask_customer(
            "Add a tip?",
            posbridge.CustomerQuestion.TIP(base="10.00", currency="EUR", presets=[10, 15, 20], custom=True),
            30,
        )
        assert tip.is_tip() and tip.amount_minor == 150, tip
        yes = await t.ask_customer("Is the amount right?", posbridge.CustomerQuestion.YES_NO(), 30)
        assert yes.is_confirmed() and yes.yes
        signature = await t.ask_customer("Please sign", posbridge.CustomerQuestion.SIGNATURE(), 30)
        assert signature.is_signature() and signature.png[:4] == b"\x89PNG"

        sale = await t.sale("11.50", "EUR", None)
        assert sale.outcome == posbridge.PaymentOutcome.APPROVED and not sale.offline
        await t.release()

        report = await t.recover()
        assert (report.confirmed_offline, report.declined_after, report.pending_offline) == ([], [], [])
        assert [e.state for e in t.journal()] == ["done"]

        # Bad input is a typed error, nothing sent.
        with pytest.raises(posbridge.PosError.InvalidInput):
            await t.show_cart([], "ten", "EUR", None)
        await t.disconnect()

    run(scenario())
