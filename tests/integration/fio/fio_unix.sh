#!/bin/bash
# fio on the mvblk engine against mvstored's host-local AF_UNIX port (no root needed): the
# randwrite + crc32c verify matrix (iodepth 1/32, bs 4k/1m), the volume size from IDENTIFY,
# byte-exact agreement with fio's io_uring engine in both directions (what one engine wrote the
# other verifies), a corrupted block that must fail verification, bad options refused, and a
# consistent drive afterwards.
set -euo pipefail
# shellcheck disable=SC2034 # FIO_AOE and FIO_NS are read by the helpers of common.sh
# shellcheck source=tests/integration/fio/common.sh
. "$(dirname "$0")/common.sh"
fio_require
SIZE_4K=${FIO_TEST_SIZE_4K:-16M}
SIZE_1M=${FIO_TEST_SIZE_1M:-48M}
VOL=67108864 # 64 MiB

W=$(mktemp -d /tmp/hfio-unix.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$W"
}
trap cleanup EXIT
cd "$W" # fio writes verify state files into its working directory

truncate -s 96M "$W/drive.img"
"$B/mvstored" --format "$W/drive.img" --host local --chunk-size 1M >/dev/null || fail format
"$B/mvstored" -H local -u "$W/aoe.sock" -C "$W/ctl.sock" -d "$W/drive.img" \
    -m 02:00:00:00:7f:01 2>"$W/stored.log" &
pid=$!
for _ in $(seq 100); do
    grep -q serving "$W/stored.log" 2>/dev/null && break
    sleep 0.05
done
grep -q serving "$W/stored.log" || fail "mvstored did not start"
"$B/mvaoe" ctl "$W/ctl.sock" \
    "{\"cmd\":\"create\",\"vdisk\":\"fio\",\"size\":$VOL,\"shelf\":7,\"slot\":3,\"map\":true}" \
    >/dev/null || fail create
FIO_AOE="--aoe_unix=$W/aoe.sock --aoe_target=7.3"

step "engine options (fio --enghelp on the engine)"
help=$(fio_exec --enghelp="$ENGINE") || fail "fio --enghelp"
grep -q '^aoe_target ' <<<"$help" || fail "engine options not listed"

fio_matrix "$SIZE_4K" "$SIZE_1M"

step "whole volume, size from IDENTIFY, filename=e7.3 instead of aoe_target"
fio_run "$W/size.json" --ioengine="external:$ENGINE" --aoe_unix="$W/aoe.sock" \
    --name=size --filename=e7.3 --rw=read --bs=1m --iodepth=8 || fail "fio whole volume"
fio_check "$W/size.json" $VOL 0 || fail "whole-volume read"

step "verification reads what is on the volume: a corrupted block fails it"
seedjob=(--name=seed --rw=randwrite --bs=4k --size=4M --randseed=1 --verify=crc32c)
fio_mvblk "$W/seed1.json" "${seedjob[@]}" --do_verify=0 || fail "fio seed write"
fio_mvblk "$W/seed2.json" "${seedjob[@]}" --verify_only=1 || fail "verify_only of intact data"
head -c 4096 /dev/zero | "$B/mvaoe" -u "$W/aoe.sock" write 7.3 2048 8 || fail "mvaoe write"
if fio_mvblk "$W/seed3.json" "${seedjob[@]}" --verify_only=1 >/dev/null 2>&1; then
    fail "a zeroed block passed verification"
fi

# The same job on both engines: fio generates identical offsets and buffers, so each engine must
# read back, header and CRC, exactly what the other wrote. Any disagreement between our view of
# io_u (offset, xfer_buf, xfer_buflen) and fio's would show up here.
SECT=$((16 * 1024 * 1024 / 512))
job=(--name=x --rw=randwrite --bs=4k --size=16M --verify=crc32c)
step "io_uring writes a file, mvblk verifies it on the volume"
fio_run "$W/u1.json" --ioengine=io_uring --filename="$W/x.img" --iodepth=16 "${job[@]}" \
    --randseed=77 --do_verify=0 || fail "io_uring write"
"$B/mvaoe" -u "$W/aoe.sock" write 7.3 0 $SECT <"$W/x.img" || fail "mvaoe write"
fio_mvblk "$W/u2.json" --iodepth=16 "${job[@]}" --randseed=77 --verify_only=1 ||
    { cat "$W/u2.json" >&2; fail "mvblk did not verify io_uring's data"; }
fio_check "$W/u2.json" $((16 * 1024 * 1024)) $((16 * 1024 * 1024)) || fail "mvblk verify_only"

step "mvblk writes the volume, io_uring verifies a copy of it"
fio_mvblk "$W/u3.json" --iodepth=16 "${job[@]}" --randseed=78 --do_verify=0 || fail "mvblk write"
"$B/mvaoe" -u "$W/aoe.sock" read 7.3 0 $SECT >"$W/y.img" || fail "mvaoe read"
fio_run "$W/u4.json" --ioengine=io_uring --filename="$W/y.img" --iodepth=16 "${job[@]}" \
    --randseed=78 --verify_only=1 || { cat "$W/u4.json" >&2; fail "io_uring did not verify mvblk's data"; }
fio_check "$W/u4.json" $((16 * 1024 * 1024)) $((16 * 1024 * 1024)) || fail "io_uring verify_only"
cmp -s "$W/x.img" "$W/y.img" && fail "different seeds wrote the same data"

step "bad options are refused"
fio_run "$W/bad.json" --ioengine="external:$ENGINE" --aoe_unix="$W/aoe.sock" --name=bad \
    --filename=notanaddress --rw=read --bs=4k --size=1M >/dev/null 2>"$W/bad.err" &&
    fail "a filename that is no AoE address was accepted"
grep -q 'no AoE address' "$W/bad.err" || { cat "$W/bad.err" >&2; fail "no clear error"; }
fio_run "$W/bad.json" --ioengine="external:$ENGINE" --aoe_unix="$W/aoe.sock" --aoe_if=lo \
    --aoe_target=7.3 --name=bad --rw=read --bs=4k --size=1M >/dev/null 2>"$W/bad.err" &&
    fail "aoe_if and aoe_unix together were accepted"
grep -q 'exactly one of' "$W/bad.err" || { cat "$W/bad.err" >&2; fail "no clear error"; }
fio_run "$W/bad.json" --ioengine="external:$ENGINE" --aoe_unix="$W/aoe.sock" --aoe_target=7.4 \
    --aoe_timeout=300 --name=bad --rw=read --bs=4k --size=1M >/dev/null 2>"$W/bad.err" &&
    fail "an absent target was accepted"
grep -q 'e7.4' "$W/bad.err" || { cat "$W/bad.err" >&2; fail "no clear error"; }

step "clean shutdown, consistent drive"
kill "$pid"
wait "$pid" || fail "mvstored exit status $?"
pid=
grep -q stopping "$W/stored.log" || fail "no clean shutdown"
"$B/mvstored" --check "$W/drive.img" >/dev/null || fail "mvstored --check"
echo PASS
