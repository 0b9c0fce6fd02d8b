# shellcheck shell=bash
# Helpers of the fio engine tests: find fio and the engine (or skip), run fio jobs on the mvblk
# engine and on io_uring, check fio's JSON results.
B=${MV_BUILD_DIR:?}/bin
ENGINE=${MV_BUILD_DIR}/lib/libmvblk_fio.so
PY=/usr/bin/python3

step() { echo "=== $*"; }
fail() {
    echo "FAIL: $*" >&2
    exit 1
}
skip() {
    echo "skip: $*"
    exit 77
}

fio_require() {
    command -v fio >/dev/null || skip "fio is not installed"
    [ -f "$ENGINE" ] || skip "no $ENGINE: run scripts/fio-source $MV_BUILD_DIR/_deps/fio-src, then re-run cmake (docs/fio.md)"
    if [ ! -x "$B/mvstored" ] || [ ! -x "$B/mvaoe" ]; then skip "mvstored/mvaoe not built"; fi
    # An engine built with the sanitizers needs their runtimes loaded ahead of everything in the
    # uninstrumented fio; fio's own allocations are not ours to leak-check.
    # (grep on a here-string: grep -q closing a pipe early would fail ldd under pipefail)
    local deps pre
    deps=$(ldd "$ENGINE")
    if grep -q libasan <<<"$deps"; then
        pre="$(gcc -print-file-name=libasan.so)"
        grep -q libubsan <<<"$deps" && pre="$pre $(gcc -print-file-name=libubsan.so)"
        export FIO_PRELOAD="$pre"
        export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
    fi
}

# fio_exec ARGS...: fio (in namespace FIO_NS when set) with the sanitizer runtimes preloaded when
# the engine needs them. Leak checking stays on for our daemons (the caller's ASAN_OPTIONS) but
# not for the uninstrumented fio: later ASAN_OPTIONS entries win, so detect_leaks=0 is appended
# for this process only.
fio_exec() {
    local asan=${ASAN_OPTIONS:-abort_on_error=1} pre=()
    [ -z "${FIO_PRELOAD:-}" ] || asan="$asan:detect_leaks=0"
    [ -n "${FIO_NS:-}" ] && pre=(ip netns exec "$FIO_NS")
    "${pre[@]}" env LD_PRELOAD="${FIO_PRELOAD:-}" ASAN_OPTIONS="$asan" fio "$@"
}

# fio_run OUT.json ARGS...: one fio run, JSON results in OUT.json, exit status of fio.
fio_run() {
    local out=$1
    shift
    fio_exec --output-format=json --output="$out" "$@"
}

# fio_mvblk OUT.json ARGS...: fio on the mvblk engine; FIO_AOE holds the port options.
fio_mvblk() {
    local out=$1
    shift
    # shellcheck disable=SC2086 # FIO_AOE is a list of options
    fio_run "$out" --ioengine="external:$ENGINE" $FIO_AOE "$@"
}

# fio_check OUT.json READ_BYTES WRITE_BYTES: every job without error, byte counts as expected
# (summed over the jobs; verify reads count as reads, verify_only counts the writes it skips).
fio_check() {
    "$PY" - "$@" <<'PYEOF'
import json, sys
path, want_r, want_w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
text = open(path).read()
doc = json.loads(text[text.index("{"):])  # fio may print notes before the JSON
jobs = doc["jobs"]
errs = [j["error"] for j in jobs if j["error"]]
r = sum(j["read"]["io_bytes"] for j in jobs)
w = sum(j["write"]["io_bytes"] for j in jobs)
iops = sum(j["write"]["iops"] + j["read"]["iops"] for j in jobs)
print(f"  read={r} write={w} errors={errs} write_iops={sum(j['write']['iops'] for j in jobs):.0f}"
      f" read_iops={sum(j['read']['iops'] for j in jobs):.0f}")
if errs or r != want_r or w != want_w:
    sys.exit(f"unexpected: want read={want_r} write={want_w} and no errors")
PYEOF
}

# The job matrix of the task: randwrite + crc32c verify at iodepth 1 and 32, bs 4k and 1m.
# fio_matrix SIZE_4K SIZE_1M
fio_matrix() {
    local size bs depth n=0
    for bs in 4k 1m; do
        size=$1
        [ "$bs" = 1m ] && size=$2
        for depth in 1 32; do
            step "randwrite bs=$bs iodepth=$depth size=$size verify=crc32c"
            n=$((n + 1))
            fio_mvblk "$W/m$n.json" --name=m$n --rw=randwrite --bs=$bs --iodepth=$depth \
                --size="$size" --verify=crc32c --randseed=$((100 + n)) ||
                { cat "$W/m$n.json" >&2; fail "fio bs=$bs iodepth=$depth"; }
            local bytes
            bytes=$(numfmt --from=iec "$size")
            fio_check "$W/m$n.json" "$bytes" "$bytes" || fail "results bs=$bs iodepth=$depth"
        done
    done
}
