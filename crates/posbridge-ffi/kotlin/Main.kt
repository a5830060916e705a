// posbridge's Kotlin bindings on the JVM against the embedded simulator: the scenarios of the
// Python suite from Kotlin coroutines. Prints each scenario's verdict and closes with
// "N passed, M failed"; exits non-zero when any failed.

import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.delay
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext
import uniffi.posbridge.ByteStream
import uniffi.posbridge.GattNotifier
import uniffi.posbridge.GattOptions
import uniffi.posbridge.GattPeripheral
import uniffi.posbridge.connectGatt
import uniffi.posbridge.SimulatedUsbDevice
import uniffi.posbridge.UsbBulk
import uniffi.posbridge.UsbOptions
import uniffi.posbridge.connectUsb
import uniffi.posbridge.NexoOptions
import uniffi.posbridge.NexoTrust
import uniffi.posbridge.connectNexo
import uniffi.posbridge.connectZvt
import uniffi.posbridge.startNexoSimulator
import uniffi.posbridge.startZvtSimulator
import uniffi.posbridge.StreamOptions
import uniffi.posbridge.connectStream
import java.net.Socket
import java.util.concurrent.atomic.AtomicLong
import uniffi.posbridge.CartItem
import uniffi.posbridge.ConnectOptions
import uniffi.posbridge.CustomerAnswer
import uniffi.posbridge.CustomerQuestion
import uniffi.posbridge.Operator
import uniffi.posbridge.PaymentOutcome
import uniffi.posbridge.PosException
import uniffi.posbridge.ProgressListener
import uniffi.posbridge.ProgressUpdate
import uniffi.posbridge.Simulator
import uniffi.posbridge.Terminal
import uniffi.posbridge.connect
import uniffi.posbridge.startSimulator
import uniffi.posbridge.version
import java.nio.file.Files
import java.util.Collections
import kotlin.system.exitProcess

val manager = Operator("manager", "2468")

fun check(condition: Boolean, what: () -> String) {
    if (!condition) throw AssertionError(what())
}

suspend fun paired(cardDelayMs: ULong = 0u): Triple<Simulator, String, Terminal> {
    val sim = startSimulator(cardDelayMs)
    val data = Files.createTempDirectory("posbridge-kt-").toString()
    val terminal = connect(ConnectOptions(sim.address(), data, sim.pairingCode(), "kotlin"))
    return Triple(sim, data, terminal)
}

inline fun <reified E : Throwable> expect(block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        throw AssertionError("expected ${E::class.simpleName}, got $e")
    }
    throw AssertionError("expected ${E::class.simpleName}, nothing was thrown")
}

suspend fun salesRefundsAndSettlement() {
    val (sim, _, t) = paired()
    val info = t.info()
    check(info.terminalId.length == 32 && "sale" in info.kinds && "EUR" in info.currencies) { "info: $info" }
    val sale = t.sale("12.50", "EUR", null)
    check(sale.outcome == PaymentOutcome.APPROVED) { "sale: $sale" }
    check(sale.amountMinor == 1250uL && sale.signed) { "sale: $sale" }
    val again = t.sale("12.50", "EUR", sale.key)
    check(again.transactionId == sale.transactionId) { "the same key is the same payment" }
    val refund = t.refund("2.50", "EUR", sale.key, manager, null)
    check(refund.kind == "refund" && refund.outcome == PaymentOutcome.APPROVED) { "refund: $refund" }
    val hold = t.preauth("80.00", "EUR", null)
    val capture = t.capture(hold.key, "64.20", "EUR", manager, null)
    check(capture.approvedMinor == 6420uL) { "capture: $capture" }
    val declined = t.sale("20.51", "EUR", null)
    check(declined.outcome == PaymentOutcome.DECLINED) { "declined: $declined" }
    check(t.journal().count { it.state == "done" } == 5) { "journal: ${t.journal()}" }
    val settlement = t.settle(manager)
    check(settlement.reconciled) { "settlement: $settlement" }
    check(sim.transactions() == 0uL) { "the batch is closed" }
    t.disconnect()
}

suspend fun typedErrors() {
    val (_, data, t) = paired()
    expect<PosException.InvalidInput> { t.sale("-1.00", "EUR", null) }
    expect<PosException.InvalidInput> { t.sale("1.00", "EURO", null) }
    expect<PosException.InvalidInput> { t.sale("1.00", "EUR", "not a key") }
    val refused = expect<PosException.Refused> { t.refund("1.00", "EUR", null, null, null) }
    check(refused.code.toInt() != 0) { "a refusal has a code" }
    t.disconnect()
    val sim = startSimulator(0u)
    expect<PosException.NotPaired> {
        connect(ConnectOptions(sim.address(), Files.createTempDirectory("x").toString(), null, "kotlin"))
    }
    expect<PosException.ConnectFailed> { connect(ConnectOptions("127.0.0.1:9", data, null, "kotlin")) }
}

suspend fun cancelWithProgress(): Unit = kotlinx.coroutines.coroutineScope {
    val (_, _, t) = paired(1500u)
    val stages = Collections.synchronizedList(mutableListOf<String>())
    t.setProgressListener(object : ProgressListener {
        override fun onProgress(update: ProgressUpdate) {
            stages.add(update.stage)
        }
    })
    val running = async { t.sale("40.00", "EUR", null) }
    delay(500)
    t.cancel()
    val result = running.await()
    check(result.outcome == PaymentOutcome.CANCELLED) { "cancelled: $result" }
    check("WaitingForCard" in stages) { "progress: $stages" }
    t.disconnect()
}

suspend fun lostAnswerRecoveredOnce() {
    val (sim, data, t) = paired()
    sim.dropAnswers(1u)
    val lost = expect<PosException.InDoubt> { t.sale("33.30", "EUR", null) }
    check(t.inDoubt().map { it.key } == listOf(lost.key)) { "in doubt: ${t.inDoubt()}" }
    t.disconnect()
    val again = connect(ConnectOptions(sim.address(), data, null, "kotlin"))
    val report = again.recover()
    check(report.recorded == listOf(lost.key) && report.unresolved.isEmpty()) { "recovery: $report" }
    val status = again.status(lost.key)
    check(status?.outcome == PaymentOutcome.APPROVED) { "status: $status" }
    check(sim.transactions() == 1uL) { "charged exactly once" }
    again.disconnect()
}

/** The app's own transport: a plain socket, read and written on Kotlin's IO dispatcher. */
class SocketStream(host: String, port: Int) : ByteStream {
    private val socket = Socket(host, port)
    val carried = AtomicLong()

    override suspend fun read(max: UInt): ByteArray = withContext(Dispatchers.IO) {
        val buf = ByteArray(max.toInt())
        val n = try {
            socket.getInputStream().read(buf)
        } catch (e: java.io.IOException) {
            -1
        }
        if (n <= 0) ByteArray(0) else buf.copyOf(n).also { carried.addAndGet(n.toLong()) }
    }

    override suspend fun write(data: ByteArray) = withContext(Dispatchers.IO) {
        socket.getOutputStream().write(data)
        socket.getOutputStream().flush()
        carried.addAndGet(data.size.toLong())
        Unit
    }

    override suspend fun shut() = withContext(Dispatchers.IO) {
        socket.close()
    }
}

suspend fun kotlinSocketAsTheLink() {
    val sim = startSimulator(0u)
    val (host, port) = sim.address().split(":")
    val data = Files.createTempDirectory("posbridge-kt-stream-").toString()
    val stream = SocketStream(host, port.toInt())
    val t = connectStream(stream, StreamOptions(data, sim.pairingCode(), "kotlin", "kotlin socket"))
    val sale = t.sale("7.77", "EUR", null)
    check(sale.outcome == PaymentOutcome.APPROVED && sale.signed) { "sale: $sale" }
    check(stream.carried.get() > 0) { "every byte went through the Kotlin stream" }
    t.disconnect()
    val again = connectStream(SocketStream(host, port.toInt()), StreamOptions(data, null, "kotlin", "again"))
    check(again.status(sale.key)?.transactionId == sale.transactionId) { "the pairing is kept" }
    again.disconnect()
}

/**
 * The path an Android app takes: its own GATT connection handed to posbridge. Here the
 * "peripheral" is a NUS bridge to the simulator over a socket: each write (posbridge chunks to the
 * MTU) goes to the socket, and what the socket brings comes back as notifications of at most
 * MTU - 3 bytes, as a radio would deliver them.
 */
class BridgedPeripheral(host: String, port: Int, private val mtu: Int, notifier: GattNotifier) : GattPeripheral {
    private val socket = Socket(host, port)
    val writes = AtomicLong()
    @Volatile var largestWrite = 0

    init {
        Thread {
            val buf = ByteArray(mtu - 3)
            try {
                while (true) {
                    val n = socket.getInputStream().read(buf)
                    if (n <= 0) break
                    notifier.notification(buf.copyOf(n))
                }
            } catch (e: java.io.IOException) {
                // closed
            }
            notifier.disconnected("the bridge's socket closed")
        }.apply { isDaemon = true; start() }
    }

    override fun attMtu(): UShort = mtu.toUShort()

    override suspend fun write(value: ByteArray, withResponse: Boolean) = withContext(Dispatchers.IO) {
        check(value.size <= mtu - 3) { "a write of ${value.size} bytes exceeds MTU - 3" }
        largestWrite = maxOf(largestWrite, value.size)
        writes.incrementAndGet()
        socket.getOutputStream().write(value)
        socket.getOutputStream().flush()
    }

    override suspend fun disconnect() = withContext(Dispatchers.IO) {
        socket.close()
    }
}

suspend fun kotlinGattAsTheLink() {
    val sim = startSimulator(0u)
    val (host, port) = sim.address().split(":")
    val data = Files.createTempDirectory("posbridge-kt-gatt-").toString()
    val notifier = GattNotifier()
    val peripheral = BridgedPeripheral(host, port.toInt(), 23, notifier)
    val options = GattOptions(data, sim.pairingCode(), "kotlin", "00:11:22:33:44:55", "NUS bridge", true, true)
    val t = connectGatt(peripheral, notifier, options)
    val sale = t.sale("19.99", "EUR", null)
    check(sale.outcome == PaymentOutcome.APPROVED && sale.signed) { "sale over GATT: $sale" }
    check(peripheral.largestWrite == 20) { "writes are chunked to MTU - 3: ${peripheral.largestWrite}" }
    check(peripheral.writes.get() > 10) { "many small writes: ${peripheral.writes.get()}" }
    t.disconnect()
}

/** The path an Android app's USB code takes, its transfers passed to the simulator as a device. */
class KotlinBulk(private val device: SimulatedUsbDevice) : UsbBulk {
    val outs = AtomicLong()
    override fun outMaxPacket(): UInt = device.maxPacket()
    override fun inMaxPacket(): UInt = device.maxPacket()
    override suspend fun bulkOut(data: ByteArray) {
        check(data.size <= 64) { "an OUT transfer of ${data.size} bytes exceeds the packet size" }
        outs.incrementAndGet()
        device.bulkOut(data)
    }
    override suspend fun bulkIn(max: UInt): ByteArray = device.bulkIn(max)
}

suspend fun kotlinUsbAsTheLink() {
    val sim = startSimulator(0u)
    val bulk = KotlinBulk(sim.usbDevice())
    val data = Files.createTempDirectory("posbridge-kt-usb-").toString()
    val t = connectUsb(bulk, UsbOptions(data, sim.pairingCode(), "kotlin", "USB 1234:5678"))
    val sale = t.sale("6.66", "EUR", null)
    check(sale.outcome == PaymentOutcome.APPROVED && sale.signed) { "sale over USB: $sale" }
    check(bulk.outs.get() > 10) { "messages segmented into packets: ${bulk.outs.get()}" }
    t.disconnect()
}

suspend fun zvtAndNexoThroughTheSameObject() {
    val zvtSim = startZvtSimulator()
    val zvt = connectZvt(zvtSim.address(), 0u, Files.createTempDirectory("posbridge-kt-zvt-").toString())
    val sale = zvt.sale("12.50", "EUR", null)
    check(sale.outcome == PaymentOutcome.APPROVED) { "ZVT sale: $sale" }
    check(zvt.settle(null).reconciled) { "ZVT end of day reconciled" }
    zvt.disconnect()

    val nexoSim = startNexoSimulator("kotlin", "a shared passphrase")
    val options = NexoOptions(
        nexoSim.address(), nexoSim.poiId(), "kotlin", "kotlin", 1u, "a shared passphrase",
        NexoTrust.Root(nexoSim.rootCertificatePem(), false),
        Files.createTempDirectory("posbridge-kt-nexo-").toString(),
    )
    val nexo = connectNexo(options)
    val paid = nexo.sale("9.99", "EUR", null)
    check(paid.outcome == PaymentOutcome.APPROVED) { "nexo sale: $paid" }
    val void = nexo.void(paid.key, null, null)
    check(void.kind == "void" && void.outcome == PaymentOutcome.APPROVED) { "nexo void: $void" }
    nexo.disconnect()
    expect<PosException.ConnectFailed> { connectNexo(options.copy(passphrase = "wrong")) }
}

suspend fun theTerminalBeyondPayments() {
    val (_, _, t) = paired()
    val status = t.terminalStatus() ?: throw AssertionError("a 1.1 terminal reports its status")
    check(status.batteryPercent == 87.toUByte() && status.power == "battery" && status.paper == "ok") { "status: $status" }
    check(status.acquirerOnline && status.storedOffline == 0u) { "status: $status" }
    val lease = t.acquire("Till 1", 60u, null)
    check(lease?.state == "granted" && lease.holder == null) { "lease: $lease" }
    val cart = listOf(CartItem("Cappuccino", 2u, "7.60"), CartItem("Croissant", null, "2.40"))
    check(t.showCart(cart, "10.00", "EUR", "Thank you!")) { "the cart is shown" }
    // The simulated customer picks the second preset: 15 % of 10.00.
    val tip = t.askCustomer("Add a tip?", CustomerQuestion.Tip("10.00", "EUR", listOf<UShort>(10u, 15u, 20u), true), 30u)
    check(tip == CustomerAnswer.Tip(150uL)) { "tip: $tip" }
    val yes = t.askCustomer("Is the amount right?", CustomerQuestion.YesNo, 30u)
    check(yes == CustomerAnswer.Confirmed(true)) { "yes: $yes" }
    t.release()
    val report = t.recover()
    check(report.pendingOffline.isEmpty() && report.declinedAfter.isEmpty() && report.confirmedOffline.isEmpty()) { "report: $report" }
    expect<PosException.InvalidInput> { t.showCart(listOf(), "ten", "EUR", null) }
    t.disconnect()
}

fun main() {
    val scenarios = listOf<Pair<String, suspend () -> Unit>>(
        "sales, refunds, pre-authorisation and settlement" to ::salesRefundsAndSettlement,
        "typed errors for bad input" to ::typedErrors,
        "cancel mid-payment with progress events" to ::cancelWithProgress,
        "a lost answer recovered exactly once" to ::lostAnswerRecoveredOnce,
        "a Kotlin socket as the link" to ::kotlinSocketAsTheLink,
        "a Kotlin GATT peripheral (MTU 23) as the link" to ::kotlinGattAsTheLink,
        "a Kotlin USB bulk pair (64-byte packets) as the link" to ::kotlinUsbAsTheLink,
        "ZVT and nexo terminals through the same object" to ::zvtAndNexoThroughTheSameObject,
        "the terminal beyond payments: status, lease, cart, customer questions" to ::theTerminalBeyondPayments,
    )
    var passed = 0
    var failed = 0
    println("posbridge ${version()} from Kotlin")
    for ((name, scenario) in scenarios) {
        try {
            runBlocking { scenario() }
            passed++
            println("ok: $name")
        } catch (e: Throwable) {
            failed++
            println("FAILED: $name: $e")
        }
    }
    println("$passed passed, $failed failed")
    exitProcess(if (failed == 0) 0 else 1)
}
