"""What posbridge's Python bindings cost per call: sales of 1.00 EUR against the embedded
simulator (answering at once) through the bindings from Python, and the same sales through the
same Rust `Terminal` without crossing into Python, in the same run. Prints one line per path.

Run (after scripts/python-tests.sh built and installed the wheel):
    target/py-test/bin/python crates/posbridge-ffi/python/bench.py [N]
"""

import asyncio
import statistics
import sys
import tempfile
import time

import posbridge
from posbridge.posbridge import uniffi_set_event_loop

N = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
ROUNDS = 5


async def python_sales(n):
    sim = await posbridge.start_simulator(0)
    t = await posbridge.connect(
        posbridge.ConnectOptions(
            address=sim.address(), data_dir=tempfile.mkdtemp(), pairing_code=sim.pairing_code(), till_name="bench"
        )
    )
    await t.sale("1.00", "EUR", None)  # warm up
    start = time.perf_counter_ns()
    for _ in range(n):
        await t.sale("1.00", "EUR", None)
    elapsed = time.perf_counter_ns() - start
    await t.disconnect()
    return elapsed


async def rust_sales(n):
    sim = await posbridge.start_simulator(0)
    return await sim.time_rust_sales(n)


async def main():
    uniffi_set_event_loop(asyncio.get_running_loop())
    py, rs = [], []
    for _ in range(ROUNDS):
        rs.append(await rust_sales(N) / N / 1000)
        py.append(await python_sales(N) / N / 1000)
    for name, xs in (("rust Terminal (no crossing)", rs), ("python through the bindings", py)):
        print(f"{name}: median {statistics.median(xs):.1f} µs per sale (rounds: {', '.join(f'{x:.1f}' for x in xs)})")
    print(f"the bindings' cost per call: {statistics.median(py) - statistics.median(rs):.1f} µs ({N} sales x {ROUNDS} rounds)")


asyncio.run(main())
