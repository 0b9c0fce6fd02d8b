#!/bin/bash
# shellcheck disable=SC2154,SC2034 # RESULT_<host> come from xfer (printf -v); RACK_* are read by rack.sh
# Self-test of the rack harness (tests/rack/rack.sh): topology and MACs, raw frames between
# namespaces, each injected fault measured, capture, process control, and teardown that leaves
# nothing behind, also when a test fails or is killed.
set -euo pipefail

SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=/dev/null
. "$SRC/tests/rack/rack.sh"
rack_require_root
command -v tcpdump >/dev/null || {
    echo "skip: needs tcpdump"
    exit 77
}

PY=/usr/bin/python3
RAW=$SRC/tests/rack/rawframe.py
ET=0x88b6
BASE_ID=hs$$
n=0

T0=$SECONDS
ok() {
    n=$((n + 1))
    echo "ok $n - $* ($((SECONDS - T0)) s)"
}
fail() {
    echo "not ok - $*" >&2
    exit 1
}
jget() { # jget JSON KEY: a number, or a list as space-separated words
    local re="\"$2\": (\\[[^]]*\\]|[^,}]*)" v
    [[ "$1" =~ $re ]] || fail "no $2 in '$1'"
    v=${BASH_REMATCH[1]}
    v=${v//[\[\]\",]/}
    echo "$v"
}
# Alive and not a zombie (PID 1 here may never reap orphans).
alive() {
    local st
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) && [ -n "$st" ] && [ "$st" != Z ]
}
ns_left() { ip netns list | awk '{print $1}' | grep -c "^mvr-$1-" || true; }

# Receivers on the given hosts, then COUNT frames from FROM to DST (a host or a MAC); sets
# RESULT_<host> to each receiver's JSON summary.
xfer() {
    local from=$1 dst=$2 count=$3 h mac
    shift 3
    local receivers=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        receivers+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    for h in "${receivers[@]}"; do
        rack_spawn "$h" rx "$PY" "$RAW" recv eth0 $ET 60
    done
    for h in "${receivers[@]}"; do
        rack_wait_log "$h" rx '^ready' 10
    done
    case "$dst" in *:*) mac=$dst ;; *) mac=$(rack_mac "$dst") ;; esac
    rack_exec "$from" "$PY" "$RAW" send eth0 "$mac" $ET "$count" "$@"
    sleep 0.3 # frames in flight (the reorder delay line holds some for 5 ms)
    for h in "${receivers[@]}"; do
        rack_kill "$h" rx TERM || fail "receiver on $h did not stop"
        printf -v "RESULT_$h" '%s' "$(tail -n 1 "$(rack_logfile "$h" rx)")"
    done
}

# ---- topology ----
RACK_ID=$BASE_ID
rack_up 3
[ "$(ns_left "$RACK_ID")" = 4 ] || fail "expected 4 namespaces"
[ "$(rack_ifname)" = eth0 ] || fail "ifname"
declare -A seen_mac
for h in h1 h2 h3; do
    mac=$(rack_mac "$h")
    [[ "$mac" =~ ^02:6d:76:[0-9a-f]{2}:00:0${h#h}$ ]] || fail "$h MAC $mac"
    [ "$(rack_exec "$h" cat /sys/class/net/eth0/address)" = "$mac" ] || fail "$h eth0 MAC"
    [ "$(rack_exec "$h" cat /sys/class/net/eth0/mtu)" = 1500 ] || fail "$h MTU"
    [ -z "${seen_mac[$mac]:-}" ] || fail "duplicate MAC $mac"
    seen_mac[$mac]=1
done
rack_add_host ctl
[ "$(rack_mac ctl)" = "$(rack_mac h1 | cut -d: -f1-4):00:fe" ] || fail "ctl MAC"
[ "$(rack_ip ctl)" = 10.0.0.254 ] || fail "ctl IP"
[ "$(rack_hosts | tr '\n' ' ')" = "h1 h2 h3 ctl " ] || fail "host list"
! ip link show | grep_q "p-h1" || fail "a rack link leaked into the root namespace"
ok "3 hosts + ctl, deterministic MACs, eth0 in each namespace"

# ---- raw frames ----
xfer h2 ff:ff:ff:ff:ff:ff 20 h1 h3 ctl # also teaches the switch where h2 is
for h in h1 h3 ctl; do
    r=RESULT_$h
    [ "$(jget "${!r}" unique)" = 20 ] || fail "broadcast to $h: ${!r}"
    [ "$(jget "${!r}" sources)" = "$(rack_mac h2)" ] || fail "broadcast source at $h: ${!r}"
done
xfer h1 h2 300 h2 h3 -- --gap-us 20
[ "$(jget "$RESULT_h2" count)" = 300 ] || fail "unicast h1->h2: $RESULT_h2"
[ "$(jget "$RESULT_h2" sources)" = "$(rack_mac h1)" ] || fail "unicast source: $RESULT_h2"
[ "$(jget "$RESULT_h3" count)" = 0 ] || fail "h3 saw h1->h2 unicast: $RESULT_h3"
ok "raw frames: broadcast reaches every host, unicast only its destination"

# ---- loss ----
rack_loss 20
xfer h1 h2 2000 h2 -- --gap-us 20
got=$(jget "$RESULT_h2" unique)
[ "$got" -ge 1440 ] && [ "$got" -le 1760 ] || fail "rack_loss 20: $got of 2000 arrived"
ok "rack_loss 20: $((2000 - got)) of 2000 lost"
rack_loss 0
xfer h1 h2 500 h2 -- --gap-us 20
[ "$(jget "$RESULT_h2" count)" = 500 ] || fail "after rack_loss 0: $RESULT_h2"
ok "rack_loss 0: 500 of 500 arrived"

# ---- duplication ----
rack_dup 20
xfer h1 h2 1000 h2 -- --gap-us 20
d=$(jget "$RESULT_h2" dups)
[ "$(jget "$RESULT_h2" unique)" = 1000 ] && [ "$d" -ge 120 ] && [ "$d" -le 280 ] ||
    fail "rack_dup 20: $RESULT_h2"
rack_dup 0
xfer h1 h2 300 h2 -- --gap-us 20
[ "$(jget "$RESULT_h2" dups)" = 0 ] || fail "after rack_dup 0: $RESULT_h2"
ok "rack_dup 20: $d duplicates of 1000, none after rack_dup 0"

# ---- reordering ----
rack_reorder 20 5
xfer h1 h2 500 h2 -- --gap-us 200
reo=$(jget "$RESULT_h2" reordered)
[ "$(jget "$RESULT_h2" count)" = 500 ] && [ "$reo" -ge 25 ] || fail "rack_reorder 20: $RESULT_h2"
rack_reorder 0
xfer h1 h2 300 h2 -- --gap-us 200
[ "$(jget "$RESULT_h2" reordered)" = 0 ] && [ "$(jget "$RESULT_h2" count)" = 300 ] ||
    fail "after rack_reorder 0: $RESULT_h2"
ok "rack_reorder 20 5: $reo of 500 out of order, none lost; in order after rack_reorder 0"

# ---- partition ----
rack_partition h2
xfer h1 h2 50 h2 -- --gap-us 100
[ "$(jget "$RESULT_h2" count)" = 0 ] || fail "partitioned h2 received: $RESULT_h2"
xfer h2 ff:ff:ff:ff:ff:ff 50 h1 h3
[ "$(jget "$RESULT_h1" count)" = 0 ] && [ "$(jget "$RESULT_h3" count)" = 0 ] ||
    fail "partitioned h2 was heard: $RESULT_h1 $RESULT_h3"
xfer h1 h3 50 h3 -- --gap-us 100
[ "$(jget "$RESULT_h3" count)" = 50 ] || fail "h1->h3 during h2's partition: $RESULT_h3"
rack_heal h2
xfer h1 h2 50 h2 -- --gap-us 100
[ "$(jget "$RESULT_h2" count)" = 50 ] || fail "after rack_heal: $RESULT_h2"
rack_link h2 down
[ "$(rack_exec h2 cat /sys/class/net/eth0/carrier 2>/dev/null || echo 0)" = 0 ] ||
    fail "rack_link down: carrier still up"
rack_link h2 up
ok "rack_partition cuts both ways (others unaffected), rack_heal restores, rack_link drops carrier"

# ---- capture ----
cap=$(rack_dir)/capture.pcap
rack_capture_start "$cap" ether proto $ET
xfer h1 h3 40 h3 -- --gap-us 100
rack_capture_stop
frames=$(tcpdump -r "$cap" -n -e 2>/dev/null | grep -c "$(rack_mac h1) > $(rack_mac h3)" || true)
if [ "$frames" != 40 ]; then
    rack_log sw capture >&2 || true
    tcpdump -r "$cap" -n -e 2>&1 | head -5 >&2 || true
    fail "capture holds $frames of 40 frames"
fi
if command -v tshark >/dev/null; then
    t=$(tshark -r "$cap" -Y "eth.type == $ET" 2>/dev/null | wc -l)
    [ "$t" = 40 ] || fail "tshark counts $t frames"
fi
ok "capture on the switch: 40 of 40 frames"

# ---- processes ----
# shellcheck disable=SC2016
rack_spawn h3 talker sh -c 'echo "hello from $(cat /sys/class/net/eth0/address)"; sleep 1000'
rack_wait_log h3 talker "hello from $(rack_mac h3)" 5 || fail "spawned process not in h3"
pid=$(rack_pid h3 talker)
child=$(pgrep -P "$pid" sleep || true)
[ -n "$child" ] || fail "no child sleep"
rack_kill h3 talker || fail "rack_kill"
! alive "$pid" || fail "talker survived"
! alive "$child" || fail "talker's child survived"
RACK_KILL_TIMEOUT=1
rack_spawn h3 stubborn bash -c 'trap "" TERM; echo up; while :; do sleep 0.1; done'
rack_wait_log h3 stubborn '^up' 5
pid=$(rack_pid h3 stubborn)
rack_kill h3 stubborn TERM 2>/dev/null || fail "rack_kill of a TERM-ignoring process"
! alive "$pid" || fail "stubborn survived"
RACK_KILL_TIMEOUT=5
! rack_wait_log h3 talker 'never printed' 1 2>/dev/null || fail "rack_wait_log matched nothing"
[ "$(rack_log h3 talker)" = "hello from $(rack_mac h3)" ] || fail "rack_log"
ok "spawn in a host, wait for its log, kill its process group (KILL after a TERM timeout)"

# ---- a second rack beside this one, jumbo frames ----
(
    RACK_ID=${BASE_ID}j RACK_MTU=9000
    rack_up 2
    [ "$(rack_exec h1 cat /sys/class/net/eth0/mtu)" = 9000 ] || fail "jumbo MTU"
    xfer h1 h2 20 h2 -- --size 8900
    [ "$(jget "$RESULT_h2" count)" = 20 ] || fail "jumbo frames: $RESULT_h2"
)
[ "$(ns_left "${BASE_ID}j")" = 0 ] || fail "jumbo rack left namespaces"
[ "$(ns_left "$BASE_ID")" = 5 ] || fail "the first rack was disturbed"
ok "a second rack (RACK_MTU=9000) runs beside the first and carries 8900-byte frames"

# ---- teardown ----
rack_spawn h1 sleeper sleep 1000
pid=$(rack_pid h1 sleeper)
dir=$(rack_dir)
rack_down
[ "$(ns_left "$BASE_ID")" = 0 ] || fail "namespaces left after rack_down"
[ ! -e "$dir" ] || fail "$dir left after rack_down"
! alive "$pid" || fail "process left after rack_down"
ok "rack_down: no namespace, process or temp dir left"

# A failing test (set -e) and a killed one tear down through the traps.
set +e
(
    set -e
    RACK_ID=${BASE_ID}f
    rack_up 2
    rack_spawn h1 sleeper sleep 1000
    rack_pid h1 sleeper >"/tmp/mvrack-${BASE_ID}-pid"
    false
    echo "not reached"
)
rc=$?
set -e
pid=$(cat "/tmp/mvrack-${BASE_ID}-pid")
rm -f "/tmp/mvrack-${BASE_ID}-pid"
[ "$rc" = 1 ] || fail "failing subshell exited $rc"
[ "$(ns_left "${BASE_ID}f")" = 0 ] || fail "namespaces left after a failing test"
[ ! -e "/tmp/mvrack-${BASE_ID}f" ] || fail "temp dir left after a failing test"
! alive "$pid" || fail "process left after a failing test"
ok "a failing test (set -e) leaves nothing behind"

(
    RACK_ID=${BASE_ID}k
    rack_up 1
    kill -TERM $BASHPID
    sleep 5
) && fail "killed subshell exited 0" || true
[ "$(ns_left "${BASE_ID}k")" = 0 ] || fail "namespaces left after SIGTERM"
ok "a test killed by SIGTERM leaves nothing behind"

# A stale rack (a run killed with SIGKILL) is cleaned up by the next rack_up with its id.
ip netns add "mvr-${BASE_ID}s-h7"
(
    RACK_ID=${BASE_ID}s
    rack_up 1
    [ "$(ns_left "${BASE_ID}s")" = 2 ] || fail "stale namespace survived rack_up"
)
[ "$(ns_left "${BASE_ID}s")" = 0 ] || fail "stale rack left namespaces"
ok "rack_up removes a stale rack with the same id"

echo "1..$n"
