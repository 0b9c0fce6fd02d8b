#!/bin/bash
# virtio-blk over AoE end to end, on a rack of two network namespaces: mvstored on h1 serves a
# 1 MiB vdisk replica as e1.1 (raw Ethernet on eth0 and its host-local AF_UNIX port). Each case
# writes the known pattern onto the target through libmvblk (mvaoe), runs the virtio_blk test
# guest in mvvmm (it checks the pattern, writes its own sectors 512..575, flushes, reads back),
# then reads the whole target back through libmvblk and checks every sector:
#   remote  mvvmm on h2, --disk aoe:1.1,if=eth0,target=<h1's MAC>
#   local   mvvmm on h1, --disk aoe:1.1,unix=<mvstored's socket>
#   loss    remote again with 5 % of the frames dropped by the switch
set -euo pipefail
build=${MV_BUILD_DIR:?MV_BUILD_DIR not set}
src=${MV_SOURCE_DIR:?MV_SOURCE_DIR not set}
B=$build/bin
guest=$B/guests/virtio_blk.elf
py=/usr/bin/python3
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0} # see run_virtio_guest_blk.sh
for b in mvvmm mvstored mvaoe; do
    [ -x "$B/$b" ] || { echo "skip: $b not built"; exit 77; }
done
[ -r "$guest" ] || { echo "skip: guest not built ($guest)"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: /dev/kvm missing or not accessible"; exit 77; }
. "$src/tests/rack/rack.sh"
rack_require_root
RACK_ID=hib$((RANDOM % 100000))
rack_up 2

fail() {
    echo "FAIL: $*" >&2
    rack_log h1 stored 2>/dev/null | tail -n 20 >&2 || true
    exit 1
}

truncate -s 64M "$RACK_DIR/drive.img"
"$B/mvstored" --format "$RACK_DIR/drive.img" --host h1 --chunk-size 1M >/dev/null || fail format
rack_spawn h1 stored "$B/mvstored" -H h1 -i eth0 -u "$RACK_DIR/aoe.sock" \
    -C "$RACK_DIR/ctl.sock" -d "$RACK_DIR/drive.img" || fail "spawn mvstored"
rack_wait_log h1 stored 'serving' 10 || fail "mvstored did not start"
"$B/mvaoe" ctl "$RACK_DIR/ctl.sock" \
    '{"cmd":"create","vdisk":"boot","size":1048576,"shelf":1,"slot":1,"map":true}' >/dev/null ||
    fail "create the vdisk replica"

# sector s: s as little-endian u64, then byte i = (s * 13 + i) & 0xff; 2048 sectors
prepare() {
    $py - <<'PY' | rack_exec h2 "$B/mvaoe" -i eth0 write 1.1 0 2048 || fail "write the pattern"
import struct, sys
out = sys.stdout.buffer
for s in range(2048):
    sec = bytearray((s * 13 + i) & 0xff for i in range(512))
    sec[0:8] = struct.pack('<Q', s)
    out.write(sec)
PY
}

# The guest wrote ((s * 3 + i) ^ 0x5a) to sectors 512..575; everything else is untouched.
check_target() {
    rack_exec h2 "$B/mvaoe" -i eth0 read 1.1 0 2048 >"$RACK_DIR/back.img" || fail "read back"
    $py - "$RACK_DIR/back.img" <<'PY' || fail "target data after the guest ($1)"
import struct, sys
data = open(sys.argv[1], 'rb').read()
assert len(data) == 2048 * 512, "short read back: %d bytes" % len(data)
for s in range(2048):
    sec = data[s * 512:(s + 1) * 512]
    if 512 <= s < 576:
        want = bytes(((s * 3 + i) ^ 0x5a) & 0xff for i in range(512))
    else:
        want = bytearray((s * 13 + i) & 0xff for i in range(512))
        want[0:8] = struct.pack('<Q', s)
        want = bytes(want)
    if sec != want:
        sys.exit("target: sector %d does not hold the expected data" % s)
print("target: guest writes present, other sectors intact")
PY
}

run_guest() { # host name disk-spec
    rack_exec "$1" "$src/tests/guest/run_guest_test.sh" --vmm "$B/mvvmm" --guest "$guest" \
        --timeout 150 --name "virtio_blk_aoe_$2" --expect virtio_blk_init \
        --expect virtio_blk_read --expect virtio_blk_flush --expect virtio_blk_write \
        --expect virtio_blk_errors --expect virtio_blk_get_id --expect virtio_blk_irq \
        -- --disk "$3" >"$RACK_DIR/guest-$2.log" 2>&1 || {
        cat "$RACK_DIR/guest-$2.log"
        fail "guest on $1 ($2)"
    }
    grep -E 'PASS|virtio-blk' "$RACK_DIR/guest-$2.log"
}

target_mac=$(rack_mac h1)
echo "=== remote: mvvmm on h2, aoe:1.1,if=eth0,target=$target_mac"
prepare
run_guest h2 remote "aoe:1.1,if=eth0,target=$target_mac,serial=hvi-disk"
check_target remote

echo "=== local: mvvmm on h1, aoe:1.1,unix=$RACK_DIR/aoe.sock"
prepare
run_guest h1 local "aoe:1.1,unix=$RACK_DIR/aoe.sock,serial=hvi-disk"
check_target local

echo "=== wrong target= MAC is refused"
out=$(rack_exec h2 "$B/mvvmm" --payload "$guest" \
    --disk "aoe:1.1,if=eth0,target=02:00:00:00:00:99,timeout=500" 2>&1) &&
    fail "mvvmm started with a target= nobody has"
grep -q "not from target=02:00:00:00:00:99" <<<"$out" || fail "no clear error: $out"

echo "=== remote under 5 % frame loss"
prepare
rack_loss 5
run_guest h2 loss "aoe:1.1,if=eth0,serial=hvi-disk,dead=60000"
rack_loss 0
check_target loss
# the loss really hit this disk's frames, and libmvblk's retransmissions covered it
retx=$(sed -n 's/.*frames, \([0-9]*\) retransmitted.*/\1/p' "$RACK_DIR/guest-loss.log")
[ "${retx:-0}" -gt 0 ] || fail "no retransmissions under 5 % loss (retransmitted '${retx}')"

rack_kill h1 stored TERM || fail "mvstored did not stop on SIGTERM"
"$B/mvstored" --check "$RACK_DIR/drive.img" >/dev/null || fail "mvstored --check"
echo PASS
