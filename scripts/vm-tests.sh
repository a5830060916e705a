#!/usr/bin/env bash
# vm-tests.sh — posbridge-usb, posbridge-serial (CDC-ACM) and posbridge-ble through real Linux
# USB and Bluetooth stacks, inside the linux-vm test bed (QEMU with Debian's kernel: dummy_hcd with
# a CDC-ACM + bulk-echo gadget; two virtual Bluetooth controllers with BlueZ and a NUS peripheral),
# then a paired sale phone -> BLE -> NUS bridge -> simulator through the same stack, and the
# bindings' discovery and a sale through the USB serial function.
#
# usage: scripts/vm-tests.sh            exit status = the tests' (125: the VM failed)
# env:   POSBRIDGE_TESTBEDS  the testbeds directory (default: ../shared/testbeds next to the
#                            workspace, then /work/shared/testbeds)
#        VM_CACHE            the test bed's cache (default /tmp/linux-vm-cache)
# The first run installs QEMU and BlueZ (apt) and builds the VM (~1 min); later runs take seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

beds=${POSBRIDGE_TESTBEDS:-}
if [ -z "$beds" ]; then
  for d in "$root/../shared/testbeds" /work/shared/testbeds; do
    if [ -x "$d/linux-vm/vmrun.sh" ]; then beds=$(cd "$d" && pwd); break; fi
  done
fi
[ -n "$beds" ] && [ -x "$beds/linux-vm/vmrun.sh" ] || {
  echo "vm-tests: the linux-vm test bed was not found; set POSBRIDGE_TESTBEDS" >&2
  exit 1
}
TB=$beds/linux-vm
export VM_CACHE=${VM_CACHE:-/tmp/linux-vm-cache}

echo "vm-tests: preparing the VM ($TB, cache $VM_CACHE)"
"$TB/prepare.sh" -q >/dev/null

# The test binaries, built on the host like every other test; their paths come from cargo.
testbin() {  # $1 = package, $2 = features, $3 = test target
  cargo test --locked -p "$1" --features "$2" --test "$3" --no-run --message-format=json-render-diagnostics |
    grep '"kind":\["test"\]' | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n1
}
usb=$(testbin posbridge-usb nusb vm)
ble=$(testbin posbridge-ble btleplug vm)
sale=$(testbin posbridge ble,tcp vm_ble_sale)
ffi=$(testbin posbridge-ffi usb,sim vm_usb)
[ -x "$usb" ] && [ -x "$ble" ] && [ -x "$sale" ] && [ -x "$ffi" ] || { echo "vm-tests: test binaries not found" >&2; exit 1; }

payload=$(mktemp -d "$VM_CACHE/posbridge-payload.XXXXXX")
trap 'rm -rf "$payload"' EXIT
"$TB/addbin.sh" "$payload" "$usb=/opt/posbridge/usb-tests" "$ble=/opt/posbridge/ble-tests" \
  "$sale=/opt/posbridge/ble-sale-tests" "$ffi=/opt/posbridge/ffi-usb-tests" >/dev/null
# Everything in the VM lives in RAM: drop the debug info.
strip --strip-debug "$payload"/opt/posbridge/* 2>/dev/null || true
cat >"$payload/test.sh" <<'VM'
#!/bin/sh
# Runs inside the VM.
rc=0
. /opt/testbed/usb-gadget.sh || { tb_logs; exit 1; }
echo "=== posbridge-usb and posbridge-serial through dummy_hcd"
/opt/posbridge/usb-tests --test-threads=1 --nocapture || rc=1
echo "=== the bindings (posbridge-ffi): discover and a sale through USB CDC-ACM"
/opt/posbridge/ffi-usb-tests --test-threads=1 --nocapture || rc=1
. /opt/testbed/bluetooth.sh || { tb_logs; exit 1; }
echo "=== posbridge-ble through BlueZ and two virtual controllers"
/opt/posbridge/ble-tests --test-threads=1 --nocapture || rc=1
echo "=== a paired sale phone -> BLE (BlueZ, kernel) -> NUS bridge -> simulator"
tb_nus_stop
NUS_BRIDGE_PORT=7000 tb_nus_start || { tb_logs; exit 1; }
NUS_BRIDGE_PORT=7000 /opt/posbridge/ble-sale-tests --test-threads=1 --nocapture || rc=1
[ $rc = 0 ] || tb_logs
exit $rc
VM
chmod +x "$payload/test.sh"
VM_TIMEOUT=${VM_TIMEOUT:-300} "$TB/vmrun.sh" "$payload"
