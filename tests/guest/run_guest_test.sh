#!/bin/bash
# Runs one test guest under mvvmm and judges its serial output (see mv_add_guest_test).
# usage: run_guest_test.sh --vmm PATH --guest ELF [--timeout S] [--exit-code N] [--name N]
#                          [--expect PASSNAME]... [--expect-output TEXT]... -- [mvvmm args]
set -u
vmm= guest= timeout_s=60 want_rc=0 name=guest
expects=() outputs=()
while [ $# -gt 0 ]; do
    case "$1" in
    --vmm) vmm=$2; shift 2 ;;
    --guest) guest=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --exit-code) want_rc=$2; shift 2 ;;
    --name) name=$2; shift 2 ;;
    --expect) expects+=("$2"); shift 2 ;;
    --expect-output) outputs+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "run_guest_test: unknown option $1" >&2; exit 2 ;;
    esac
done
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: /dev/kvm is missing or not accessible"
    exit 77
fi
[ -x "$vmm" ] || { echo "run_guest_test: mvvmm not built at $vmm" >&2; exit 1; }
[ -r "$guest" ] || { echo "run_guest_test: guest not built at $guest" >&2; exit 1; }

log=$(mktemp "/tmp/hv-guest-$name.XXXXXX")
trap 'rm -f "$log"' EXIT
timeout --kill-after=5 "$timeout_s" "$vmm" --payload "$guest" "$@" >"$log" 2>&1
rc=$?
# serial lines end in CR LF
sed -i 's/\r$//' "$log"
cat "$log"
fail=0
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "run_guest_test: mvvmm did not finish within ${timeout_s}s" >&2
    fail=1
elif [ "$rc" -ne "$want_rc" ]; then
    echo "run_guest_test: mvvmm exited $rc, expected $want_rc" >&2
    fail=1
fi
for e in "${expects[@]}"; do
    if ! grep -qxF "PASS $e" "$log"; then
        echo "run_guest_test: missing 'PASS $e'" >&2
        fail=1
    fi
done
for o in "${outputs[@]}"; do
    if ! grep -qF -- "$o" "$log"; then
        echo "run_guest_test: missing output '$o'" >&2
        fail=1
    fi
done
if grep -q "^FAIL" "$log"; then
    echo "run_guest_test: the guest reported a failure" >&2
    fail=1
fi
exit $fail
