# shellcheck shell=bash
# rack.sh: a rack of network namespaces for integration tests. Source it from a bash test:
#
#   . "$MV_SOURCE_DIR/tests/rack/rack.sh"
#   rack_require_root              # exit 77 "skip: needs root (network namespaces)" if not root
#   RACK_ID=mytest1 RACK_MTU=9000  # optional: id [A-Za-z0-9]{1,10} (default $$), MTU (1500)
#   rack_up 3                      # switch + hosts h1 h2 h3; traps EXIT/INT/TERM -> rack_down
#   rack_add_host ctl              # one more host (the controller) on the same switch
#   rack_exec h1 ip -br link       # run a command in h1's namespace ("sw" = the switch's)
#   rack_spawn h2 agent ./mvagent --config x.ini   # background, pid + log recorded
#   rack_wait_log h2 agent 'ready' 10              # wait up to 10 s for an ERE in its log
#   rack_log h2 agent; rack_logfile h2 agent; rack_pid h2 agent
#   rack_kill h2 agent [SIG]       # signal its process group; TERM/INT/KILL wait for exit
#   rack_mac h1                    # 02:6d:76:RR:00:01 (RR from the rack id; ctl is :00:fe)
#   rack_ip h1                     # 10.0.0.1 (ctl 10.0.0.254), on eth0, /24
#   rack_ifname                    # eth0: the interface name inside every host
#   rack_loss 20 | 0               # drop 20 % of forwarded frames (0 removes)
#   rack_dup 10 | 0                # duplicate 10 % of frames leaving the switch towards hosts
#   rack_reorder 20 [DELAY_MS] | 0 # hold 20 % of unicast frames DELAY_MS (20) ms: reordering
#   rack_partition h2; rack_heal h2          # cut h2 off the switch (both ways), and back
#   rack_link h2 down|up                     # carrier loss on h2's cable
#   rack_capture_start f.pcap ['ether proto 0x88b6']; rack_capture_stop
#   rack_down                      # kill everything, remove namespaces and temp dir
#   rack_keep; RACK_ID=x rack_attach   # leave a rack running past the script; re-attach later
#
# Layout: namespace mvr-<id>-sw holds bridge br0 (STP off, no multicast snooping) with port
# p-<host> per host; namespace mvr-<id>-<host> holds eth0, the other end of that veth. Nothing is
# created in the root namespace, so racks with different ids never collide. IPv6 is off in the
# rack so the wire carries only what the test sends. Temp dir: $RACK_DIR (/tmp/mvrack-<id>), with
# logs/<host>.<name>.log and procs/<host>.<name>.pid.
#
# Fault injection (this kernel has no tc netem; measured in tests/integration/rack/):
# - loss: nftables bridge family, forward hook, `numgen random mod 100 < PCT drop`. It applies
#   per delivery, so each receiver of a broadcast loses its copy independently.
# - duplication: nftables netdev egress hook on every switch port, `dup to` the same port; the
#   clone is marked so it is not duplicated again. Applies to every frame a host receives.
# - reordering: nftables netdev ingress on every port diverts PCT % of unicast frames (`fwd to`)
#   to a delay line (tests/rack/delayline.py on a veth that is a bridge port with learning and
#   flooding off), which sends them back into the bridge DELAY_MS later.
# - partition: nftables netdev ingress+egress chains with policy drop on the host's port (ahead
#   of the other faults); the host's link stays up, as behind a failed switch path. rack_link
#   gives real carrier loss instead.
# - capture: tcpdump on br0 (promiscuous) sees every frame entering the switch, before faults.
#
# The library is safe under `set -euo pipefail`. rack_up owns the EXIT/INT/TERM traps; add your
# own cleanup with rack_on_down 'command' (run by rack_down before the teardown). One rack per
# shell (the state is in globals); run a second one in a subshell with another RACK_ID.
# rack_spawn'ed commands get default SIGINT/SIGQUIT dispositions (a script's background jobs
# would otherwise inherit them ignored) and their own process group.
# Helpers: rawframe.py (send/receive sequence-numbered raw frames, report loss/dups/reordering
# as JSON), delayline.py (used by rack_reorder). Self-test: tests/integration/rack/test_rack.sh.

# grep_q PATTERN…: `grep -q` for the right side of a pipe. grep -q exits at the first match; under
# `set -o pipefail` the producer then dies of SIGPIPE and the pipeline fails (or a negated check
# passes) depending on timing. grep_q reads all of its input, so the result depends on the data.
grep_q() { grep "$@" >/dev/null; }

RACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
RACK_ID=${RACK_ID:-$$}
RACK_MTU=${RACK_MTU:-1500}
RACK_PY=${RACK_PY:-/usr/bin/python3}
RACK_KILL_TIMEOUT=${RACK_KILL_TIMEOUT:-5}
RACK_DIR=""
_RACK_CLEANUP=()

_rack_die() {
    echo "rack: $*" >&2
    return 1
}

_rack_check_id() {
    [[ "$RACK_ID" =~ ^[A-Za-z0-9]{1,10}$ ]] || _rack_die "RACK_ID '$RACK_ID': want [A-Za-z0-9]{1,10}"
}

_rack_prefix() { echo "mvr-$RACK_ID-"; }

# Every namespace of this rack (also a stale one from a killed run).
_rack_namespaces() {
    local p
    p=$(_rack_prefix)
    ip netns list 2>/dev/null | awk '{print $1}' | grep -F -- "$p" | grep -E "^${p}" || true
}

rack_require_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "skip: needs root (network namespaces)"
        exit 77
    fi
    if ! command -v ip >/dev/null || ! command -v nft >/dev/null; then
        echo "skip: needs iproute2 and nftables"
        exit 77
    fi
}

rack_dir() { echo "$RACK_DIR"; }

rack_ns() {
    local h=${1:?host}
    if [ "$h" = sw ]; then
        echo "mvr-$RACK_ID-sw"
        return 0
    fi
    [ -n "$RACK_DIR" ] && grep -q "^$h " "$RACK_DIR/hosts" 2>/dev/null ||
        _rack_die "no host '$h' in rack $RACK_ID" || return 1
    echo "mvr-$RACK_ID-$h"
}

rack_ifname() { echo eth0; }

rack_hosts() {
    [ -n "$RACK_DIR" ] && awk '{print $1}' "$RACK_DIR/hosts"
}

_rack_index() {
    awk -v h="$1" '$1 == h {print $2}' "$RACK_DIR/hosts"
}

# RR: one byte derived from the rack id, so racks running side by side have different MACs.
_rack_rr() {
    printf '%02x' $(($(printf '%s' "$RACK_ID" | cksum | cut -d' ' -f1) % 256))
}

rack_mac() {
    local idx
    rack_ns "$1" >/dev/null || return 1
    idx=$(_rack_index "$1")
    printf '02:6d:76:%s:%02x:%02x\n' "$(_rack_rr)" $((idx >> 8)) $((idx & 255))
}

rack_ip() {
    local idx
    rack_ns "$1" >/dev/null || return 1
    idx=$(_rack_index "$1")
    echo "10.0.$((idx >> 8)).$((idx & 255))"
}

_rack_sw() { ip netns exec "mvr-$RACK_ID-sw" "$@"; }

rack_exec() {
    local ns
    ns=$(rack_ns "${1:?host}") || return 1
    shift
    ip netns exec "$ns" "$@"
}

rack_on_down() { _RACK_CLEANUP+=("$1"); }

# ---- bring-up ----

_rack_quiet_ns() {
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1 >/dev/null
    ip -n "$1" link set lo up
}

rack_up() {
    local n=${1:?number of hosts} i
    _rack_check_id || return 1
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -le 250 ] || _rack_die "rack_up: 0..250 hosts" || return 1
    _rack_teardown # a stale rack with the same id (killed run)
    RACK_DIR=/tmp/mvrack-$RACK_ID
    mkdir -p "$RACK_DIR/logs" "$RACK_DIR/procs"
    : >"$RACK_DIR/hosts"
    trap '_rack_on_exit' EXIT
    trap '_rack_on_signal 130' INT
    trap '_rack_on_signal 143' TERM
    local sw=mvr-$RACK_ID-sw
    ip netns add "$sw" || return 1
    _rack_quiet_ns "$sw"
    ip -n "$sw" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0
    ip -n "$sw" link set br0 mtu "$RACK_MTU" up
    for ((i = 1; i <= n; i++)); do
        rack_add_host "h$i" || return 1
    done
}

# Host index (MAC/IP): h<k> -> k, ctl -> 254, any other name -> the next free from 100.
_rack_pick_index() {
    local h=$1 idx
    if [[ "$h" =~ ^h([0-9]+)$ ]] && [ "${BASH_REMATCH[1]}" -ge 1 ] &&
        [ "${BASH_REMATCH[1]}" -le 250 ]; then
        echo $((10#${BASH_REMATCH[1]}))
        return 0
    fi
    [ "$h" = ctl ] && echo 254 && return 0
    for ((idx = 100; idx < 250; idx++)); do
        awk -v i=$idx '$2 == i {f = 1} END {exit !f}' "$RACK_DIR/hosts" || {
            echo $idx
            return 0
        }
    done
    return 1
}

rack_add_host() {
    local h=${1:?host name} idx ns sw=mvr-$RACK_ID-sw
    [ -n "$RACK_DIR" ] || _rack_die "rack_add_host: rack_up first" || return 1
    [[ "$h" =~ ^[a-z][a-z0-9]{0,11}$ ]] && [ "$h" != sw ] ||
        _rack_die "host name '$h': want [a-z][a-z0-9]{0,11}, not 'sw'" || return 1
    ! grep -q "^$h " "$RACK_DIR/hosts" || _rack_die "host '$h' exists" || return 1
    idx=$(_rack_pick_index "$h") || _rack_die "no free host index" || return 1
    ns=mvr-$RACK_ID-$h
    ip netns add "$ns" || return 1
    echo "$h $idx" >>"$RACK_DIR/hosts"
    _rack_quiet_ns "$ns"
    ip -n "$sw" link add "p-$h" mtu "$RACK_MTU" type veth peer name eth0 mtu "$RACK_MTU" \
        netns "$ns" || return 1
    ip -n "$ns" link set eth0 address "$(rack_mac "$h")"
    ip -n "$ns" addr add "$(rack_ip "$h")/16" dev eth0
    ip -n "$sw" link set "p-$h" master br0 up
    ip -n "$ns" link set eth0 up
    _rack_apply_port_faults
}

# ---- processes ----

_rack_alive() {
    local pid=$1 state
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [ "$state" != Z ] && [ -n "$state" ]
}

rack_spawn() {
    local h=${1:?host} name=${2:?name} ns pidf logf i
    shift 2
    [ $# -gt 0 ] || _rack_die "rack_spawn: no command" || return 1
    ns=$(rack_ns "$h") || return 1
    pidf=$RACK_DIR/procs/$h.$name.pid
    logf=$RACK_DIR/logs/$h.$name.log
    rm -f "$pidf"
    # Own session and process group, so rack_kill reaches its children too; the pid is written
    # by the process itself (exact whether or not setsid had to fork). Background jobs of a
    # script start with SIGINT/SIGQUIT ignored: give the command their default back.
    # shellcheck disable=SC2016
    setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidf" \
        env --default-signal=INT,QUIT ip netns exec "$ns" "$@" >"$logf" 2>&1 </dev/null &
    # Up to 10 s: on a loaded 2-core CI machine even a fork+exec can take seconds.
    for ((i = 0; i < 1000; i++)); do
        [ -s "$pidf" ] && return 0
        sleep 0.01
    done
    _rack_die "rack_spawn $h $name: no pid"
}

rack_pid() {
    local f=$RACK_DIR/procs/${1:?host}.${2:?name}.pid
    [ -s "$f" ] && cat "$f"
}

rack_alive() {
    local pid
    pid=$(rack_pid "$1" "$2") && _rack_alive "$pid"
}

rack_logfile() { echo "$RACK_DIR/logs/${1:?host}.${2:?name}.log"; }

rack_log() { cat "$(rack_logfile "$1" "$2")"; }

_rack_now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

rack_wait_log() {
    local h=${1:?host} name=${2:?name} re=${3:?regex} timeout=${4:-10} f end
    f=$(rack_logfile "$h" "$name")
    end=$(($(_rack_now_ms) + ${timeout%.*} * 1000))
    while [ "$(_rack_now_ms)" -lt "$end" ]; do
        grep -Eq -- "$re" "$f" 2>/dev/null && return 0
        sleep 0.05
    done
    grep -Eq -- "$re" "$f" 2>/dev/null && return 0
    echo "rack: '$re' not in $h/$name log after ${timeout}s; last lines:" >&2
    tail -n 20 "$f" >&2 2>/dev/null || true
    return 1
}

# Signals the process group; for TERM/INT/KILL waits until it is gone (KILL after the timeout).
rack_kill() {
    local h=${1:?host} name=${2:?name} sig=${3:-TERM} pid end
    pid=$(rack_pid "$h" "$name") || _rack_die "rack_kill: no process $h/$name" || return 1
    kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
    case "$sig" in TERM | INT | KILL | SIGTERM | SIGINT | SIGKILL | 15 | 2 | 9) ;; *) return 0 ;; esac
    end=$(($(_rack_now_ms) + RACK_KILL_TIMEOUT * 1000))
    while _rack_alive "$pid" && [ "$(_rack_now_ms)" -lt "$end" ]; do
        sleep 0.02
    done
    if _rack_alive "$pid"; then
        echo "rack: $h/$name ignored SIG$sig for ${RACK_KILL_TIMEOUT}s: SIGKILL" >&2
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        sleep 0.05
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$RACK_DIR/procs/$h.$name.pid"
    ! _rack_alive "$pid"
}

# ---- faults ----

_rack_pct() {
    [[ "${1:-}" =~ ^[0-9]+$ ]] && [ "$1" -le 100 ] || _rack_die "percentage 0..100, got '${1:-}'"
}

rack_loss() {
    local pct=${1:?percent}
    _rack_pct "$pct" || return 1
    _rack_sw nft delete table bridge mvrack_loss 2>/dev/null || true
    [ "$pct" -eq 0 ] && return 0
    _rack_sw nft -f - <<EOF
table bridge mvrack_loss {
    chain loss {
        type filter hook forward priority 0; policy accept;
        numgen random mod 100 < $pct drop
    }
}
EOF
}

# Duplication, reordering and partitions hook each switch port (netdev family, per device), so
# the whole table is rebuilt from the state files whenever one of them or the host list changes.
_rack_apply_port_faults() {
    local dup reo h
    dup=$(cat "$RACK_DIR/dup" 2>/dev/null || echo 0)
    reo=$(cat "$RACK_DIR/reorder" 2>/dev/null || echo 0)
    _rack_sw nft delete table netdev mvrack_ports 2>/dev/null || true
    [ "$dup" -eq 0 ] && [ "$reo" -eq 0 ] && [ ! -s "$RACK_DIR/partitioned" ] && return 0
    {
        echo "table netdev mvrack_ports {"
        for h in $(rack_hosts); do
            # A partition drops at the port itself, before any other fault, both ways.
            if grep -qx "$h" "$RACK_DIR/partitioned" 2>/dev/null; then
                echo "  chain part_in_$h {"
                echo "    type filter hook ingress device \"p-$h\" priority -100; policy drop;"
                echo "  }"
                echo "  chain part_out_$h {"
                echo "    type filter hook egress device \"p-$h\" priority -100; policy drop;"
                echo "  }"
            fi
            if [ "$dup" -gt 0 ]; then
                echo "  chain dup_$h {"
                echo "    type filter hook egress device \"p-$h\" priority 0; policy accept;"
                echo "    meta mark != 0x6d76 numgen random mod 100 < $dup meta mark set 0x6d76 dup to \"p-$h\""
                echo "  }"
            fi
            if [ "$reo" -gt 0 ]; then
                echo "  chain reorder_$h {"
                echo "    type filter hook ingress device \"p-$h\" priority 0; policy accept;"
                echo "    meta pkttype != { broadcast, multicast } numgen random mod 100 < $reo fwd to \"dly-a\""
                echo "  }"
            fi
        done
        echo "}"
    } | _rack_sw nft -f -
}

rack_dup() {
    local pct=${1:?percent}
    _rack_pct "$pct" || return 1
    echo "$pct" >"$RACK_DIR/dup"
    _rack_apply_port_faults
}

rack_reorder() {
    local pct=${1:?percent} delay=${2:-20} sw=mvr-$RACK_ID-sw
    _rack_pct "$pct" || return 1
    [[ "$delay" =~ ^[0-9]+$ ]] || _rack_die "rack_reorder: delay in whole ms" || return 1
    if rack_alive sw delayline; then
        rack_kill sw delayline || true
    fi
    echo 0 >"$RACK_DIR/reorder"
    _rack_apply_port_faults
    [ "$pct" -eq 0 ] && return 0
    if ! ip -n "$sw" link show dly-a >/dev/null 2>&1; then
        ip -n "$sw" link add dly-a mtu "$RACK_MTU" type veth peer name dly-b mtu "$RACK_MTU"
        ip -n "$sw" link set dly-a master br0
        # Frames come back through dly-a: never learn hosts there, never flood to it.
        ip -n "$sw" link set dly-a type bridge_slave learning off flood off mcast_flood off \
            bcast_flood off
        ip -n "$sw" link set dly-a up
        ip -n "$sw" link set dly-b up
    fi
    rack_spawn sw delayline "$RACK_PY" "$RACK_ROOT/delayline.py" dly-b "$delay" || return 1
    rack_wait_log sw delayline '^ready' 10 || return 1
    echo "$pct" >"$RACK_DIR/reorder"
    _rack_apply_port_faults
}

rack_partition() {
    local h=${1:?host}
    rack_ns "$h" >/dev/null || return 1
    grep -qx "$h" "$RACK_DIR/partitioned" 2>/dev/null || echo "$h" >>"$RACK_DIR/partitioned"
    _rack_apply_port_faults
}

rack_heal() {
    local h=${1:?host}
    rack_ns "$h" >/dev/null || return 1
    if [ -f "$RACK_DIR/partitioned" ]; then
        grep -vx "$h" "$RACK_DIR/partitioned" >"$RACK_DIR/partitioned.new" || true
        mv "$RACK_DIR/partitioned.new" "$RACK_DIR/partitioned"
    fi
    _rack_apply_port_faults
}

rack_link() {
    local h=${1:?host} state=${2:?up|down}
    rack_ns "$h" >/dev/null || return 1
    [ "$state" = up ] || [ "$state" = down ] || _rack_die "rack_link: up or down" || return 1
    ip -n "mvr-$RACK_ID-sw" link set "p-$h" "$state"
}

# ---- capture ----

rack_capture_start() {
    local file=${1:?pcap file}
    shift
    if rack_alive sw capture; then
        _rack_die "a capture is running" || return 1
    fi
    rack_spawn sw capture tcpdump -i br0 --immediate-mode -U -n -Z root -w "$file" "$@" || return 1
    rack_wait_log sw capture 'listening on' 10
}

rack_capture_stop() {
    rack_alive sw capture || return 0
    sleep 0.2 # let tcpdump write what the kernel already handed it
    rack_kill sw capture INT
}

# ---- teardown ----

_rack_teardown() {
    local f pid ns dir=/tmp/mvrack-$RACK_ID
    if [ -d "$dir/procs" ]; then
        for f in "$dir"/procs/*.pid; do
            [ -s "$f" ] || continue
            pid=$(cat "$f")
            kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        done
        for f in "$dir"/procs/*.pid; do
            [ -s "$f" ] || continue
            pid=$(cat "$f")
            for _ in 1 2 3 4 5 6 7 8 9 10; do
                _rack_alive "$pid" || break
                sleep 0.05
            done
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        done
    fi
    # Whatever still runs inside the rack's namespaces was started there by the test.
    for ns in $(_rack_namespaces); do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
    done
    for ns in $(_rack_namespaces); do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$dir"
}

# rack_keep: the rack outlives this shell (a demo left running); later, from any shell,
# `RACK_ID=<id> rack_attach && rack_down` tears it down, and rack_exec/rack_log work after attach.
rack_keep() { trap - EXIT INT TERM; }

rack_attach() {
    _rack_check_id || return 1
    [ -d "/tmp/mvrack-$RACK_ID" ] || return 1
    RACK_DIR=/tmp/mvrack-$RACK_ID
}

rack_down() {
    local c
    for c in "${_RACK_CLEANUP[@]}"; do
        eval "$c" || true
    done
    _RACK_CLEANUP=()
    _rack_teardown
    RACK_DIR=""
}

_rack_on_exit() {
    local rc=$?
    trap - EXIT
    rack_down
    exit "$rc"
}

_rack_on_signal() {
    trap - EXIT INT TERM
    rack_down
    exit "$1"
}
