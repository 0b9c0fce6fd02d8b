# shellcheck shell=bash
# Helpers shared by the storage integration tests (sourced after rack.sh).
B=${MV_BUILD_DIR:?}/bin
SIZE=${AOE_TEST_SIZE:-256M}

step() { echo "=== $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# mvaoe inside a host's namespace, over its eth0.
aoe() {
    local h=$1
    shift
    rack_exec "$h" "$B/mvaoe" -i eth0 "$@"
}

ctl() { "$B/mvaoe" ctl "$RACK_DIR/ctl.sock" "$1" >/dev/null || fail "control request $1"; }

start_stored() {
    rack_spawn h1 stored "$B/mvstored" -H h1 -i eth0 -C "$RACK_DIR/ctl.sock" -d "$RACK_DIR/drive.img" ||
        fail "spawn mvstored"
    rack_wait_log h1 stored 'serving' 10 || fail "mvstored did not start"
}

format_drive() {
    truncate -s "$1" "$RACK_DIR/drive.img"
    "$B/mvstored" --format "$RACK_DIR/drive.img" --host h1 --chunk-size 1M >/dev/null ||
        fail "format"
}

check_drive() {
    "$B/mvstored" --check "$RACK_DIR/drive.img" || fail "mvstored --check"
}
