#!/bin/bash
# virtio-blk end to end: a disk file with a known pattern, mvvmm running the virtio_blk test
# guest on it (reads checked in the guest), then the guest's writes checked in the host file.
set -u
build=${MV_BUILD_DIR:?MV_BUILD_DIR not set}
src=${MV_SOURCE_DIR:?MV_SOURCE_DIR not set}
vmm=$build/bin/mvvmm
guest=$build/bin/guests/virtio_blk.elf
py=/usr/bin/python3
# ASan builds: LeakSanitizer's exit-time scan hangs in mvvmm (its seccomp filter blocks the
# ptrace/clone LSan needs), so leak checking is left to the unit tests.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
[ -x "$vmm" ] || { echo "skip: mvvmm not built ($vmm)"; exit 77; }
[ -r "$guest" ] || { echo "skip: guest not built ($guest)"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: /dev/kvm missing or not accessible"; exit 77; }

disk=$(mktemp /tmp/hvi-disk.XXXXXX)
trap 'rm -f "$disk"' EXIT
# sector s: s as little-endian u64, then byte i = (s * 13 + i) & 0xff; 1 MiB
$py - "$disk" <<'PY'
import struct, sys
with open(sys.argv[1], 'wb') as f:
    for s in range(2048):
        sec = bytearray((s * 13 + i) & 0xff for i in range(512))
        sec[0:8] = struct.pack('<Q', s)
        f.write(sec)
PY
"$src/tests/guest/run_guest_test.sh" --vmm "$vmm" --guest "$guest" --timeout 120 \
    --name virtio_guest_blk --expect virtio_blk_init --expect virtio_blk_read \
    --expect virtio_blk_flush --expect virtio_blk_write --expect virtio_blk_errors \
    --expect virtio_blk_get_id --expect virtio_blk_irq \
    -- --disk "$disk,serial=hvi-disk" || exit 1

# the guest wrote ((s * 3 + i) ^ 0x5a) to sectors 512..575; everything else is untouched
$py - "$disk" <<'PY'
import struct, sys
data = open(sys.argv[1], 'rb').read()
assert len(data) == 2048 * 512, "disk size changed"
for s in range(2048):
    sec = data[s * 512:(s + 1) * 512]
    if 512 <= s < 576:
        want = bytes(((s * 3 + i) ^ 0x5a) & 0xff for i in range(512))
    else:
        want = bytearray((s * 13 + i) & 0xff for i in range(512))
        want[0:8] = struct.pack('<Q', s)
        want = bytes(want)
    if sec != want:
        sys.exit("host file: sector %d does not hold the expected data" % s)
print("host file: guest writes present, other sectors intact")
PY
