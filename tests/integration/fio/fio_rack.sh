#!/bin/bash
# fio on the mvblk engine over raw Ethernet: mvstored serves a volume on h1's eth0, fio runs in
# h2's namespace with aoe_if=eth0 (AF_PACKET), across a veth + bridge at MTU 9000. The randwrite +
# crc32c verify matrix (iodepth 1/32, bs 4k/1m), target selection by MAC (aoe_mac), a MAC that
# matches no target refused, clean shutdown and a consistent drive.
set -euo pipefail
# shellcheck disable=SC2034 # FIO_AOE and FIO_NS are read by the helpers of common.sh
# shellcheck source=tests/integration/fio/common.sh
. "$(dirname "$0")/common.sh"
fio_require
. "$MV_SOURCE_DIR/tests/rack/rack.sh"
rack_require_root
SIZE_4K=${FIO_TEST_SIZE_4K:-16M}
SIZE_1M=${FIO_TEST_SIZE_1M:-48M}
VOL=67108864

RACK_ID=hfio$((RANDOM % 100000)) RACK_MTU=9000
rack_up 2 # h1: mvstored, h2: fio
W=$RACK_DIR/fio
mkdir -p "$W"
cd "$W" # fio's verify state files

truncate -s 96M "$RACK_DIR/drive.img"
"$B/mvstored" --format "$RACK_DIR/drive.img" --host h1 --chunk-size 1M >/dev/null || fail format
rack_spawn h1 stored "$B/mvstored" -H h1 -i eth0 -C "$RACK_DIR/ctl.sock" -d "$RACK_DIR/drive.img" ||
    fail "spawn mvstored"
rack_wait_log h1 stored 'serving' 10 || fail "mvstored did not start"
"$B/mvaoe" ctl "$RACK_DIR/ctl.sock" \
    "{\"cmd\":\"create\",\"vdisk\":\"fio\",\"size\":$VOL,\"shelf\":5,\"slot\":1,\"map\":true}" \
    >/dev/null || fail create

FIO_NS=$(rack_ns h2)
FIO_AOE="--aoe_if=eth0 --aoe_target=5.1 --aoe_mac=$(rack_mac h1)"
fio_matrix "$SIZE_4K" "$SIZE_1M"

step "whole volume read, size from IDENTIFY"
fio_mvblk "$W/size.json" --name=size --rw=read --bs=1m --iodepth=8 || fail "fio whole volume"
fio_check "$W/size.json" $VOL 0 || fail "whole-volume read"

step "aoe_mac of no target is refused"
FIO_AOE="--aoe_if=eth0 --aoe_target=5.1 --aoe_mac=02:00:00:00:00:99 --aoe_timeout=300"
fio_mvblk "$W/bad.json" --name=bad --rw=read --bs=4k --size=1M >/dev/null 2>"$W/bad.err" &&
    fail "a target MAC nobody has was accepted"
grep -q 'e5.1' "$W/bad.err" || { cat "$W/bad.err" >&2; fail "no clear error"; }

step "clean shutdown, consistent drive"
rack_kill h1 stored TERM
grep -q stopping "$(rack_logfile h1 stored)" || fail "no clean shutdown"
"$B/mvstored" --check "$RACK_DIR/drive.img" >/dev/null || fail "mvstored --check"
echo PASS
