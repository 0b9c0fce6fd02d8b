#!/bin/bash
# Host-local path, no root needed: libmvblk -> mvstored over its AF_UNIX port (MV_PORT_UNIX):
# discovery, identify, a pattern write/read/verify, flush, clean shutdown, --check; with each
# data engine.
set -euo pipefail
grep_q() { grep "$@" >/dev/null; } # grep -q ends early: SIGPIPE under pipefail
B=${MV_BUILD_DIR:?}/bin
SIZE=${AOE_UNIX_SIZE:-64M}
D=$(mktemp -d /tmp/hst-unix.XXXXXX)
pid=
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    [ -f "$D/stored.log" ] && tail -n 20 "$D/stored.log" >&2
    exit 1
}

# Each data engine: io_uring with O_DIRECT (default), io_uring buffered, inline buffered.
for mode in "" "--buffered" "--io sync --buffered"; do
    echo "=== mvstored $mode"
    rm -f "$D"/*
    truncate -s 96M "$D/drive.img"
    "$B/mvstored" --format "$D/drive.img" --host local --chunk-size 256K >/dev/null || fail format
    "$B/mvstored" -H local $mode -u "$D/aoe.sock" -C "$D/ctl.sock" -d "$D/drive.img" \
        -m 02:00:00:00:77:01 2>"$D/stored.log" &
    pid=$!
    for _ in $(seq 100); do
        grep -q serving "$D/stored.log" 2>/dev/null && break
        sleep 0.05
    done
    grep -q serving "$D/stored.log" || fail "mvstored did not start"
    grep serving "$D/stored.log"
    "$B/mvaoe" ctl "$D/ctl.sock" \
        '{"cmd":"create","vdisk":"local","size":67108864,"shelf":9,"slot":9,"map":true}' >/dev/null ||
        fail create
    A=("$B/mvaoe" -u "$D/aoe.sock")
    "${A[@]}" discover | grep_q '^e9.9 02:00:00:00:77:01 ' || fail discover
    "${A[@]}" identify 9.9 | grep_q 'sectors: 131072 ' || fail identify
    "${A[@]}" verify 9.9 --size "$SIZE" --seed 3 || fail verify
    "${A[@]}" verify 9.9 --size 1M --seed 4 --read-only -q 2>/dev/null && fail "wrong seed verified"
    "${A[@]}" flush 9.9 || fail flush
    kill "$pid"
    wait "$pid" || fail "mvstored exit status $?"
    pid=
    grep -q stopping "$D/stored.log" || fail "no clean shutdown"
    "$B/mvstored" --check "$D/drive.img" || fail check
done
echo PASS
