#!/bin/bash
# Control channel on a rack of namespaces: discovery within 2 s, then h1 exchanges N echo
# requests and a volume of bulk messages with every other host (intact, in order) under
# 0 %, 5 % and 20 % frame loss; then an attack campaign (forged, replayed, unauthenticated frames)
# that must execute nothing and be counted in full.
# Usage: ethproto_channel.sh HOSTS   (env: MV_ETHPROTO_REQUESTS=10000 MV_ETHPROTO_BULK=64M
#                                     MV_ETHPROTO_LOSSES="0 5 20")
set -euo pipefail
: "${MV_SOURCE_DIR:?}" "${MV_BUILD_DIR:?}"
HOSTS=${1:-3}
# MV_QUICK (set by scripts/test for the sanitizer build) scales the volume down, not the checks.
if [ -n "${MV_QUICK:-}" ]; then
    REQUESTS=${MV_ETHPROTO_REQUESTS:-1000}
    BULK=${MV_ETHPROTO_BULK:-4M}
else
    REQUESTS=${MV_ETHPROTO_REQUESTS:-10000}
    BULK=${MV_ETHPROTO_BULK:-64M}
fi
LOSSES=${MV_ETHPROTO_LOSSES:-0 5 20}
. "$MV_SOURCE_DIR/tests/rack/rack.sh"
rack_require_root
BIN=$MV_BUILD_DIR/bin/mvnode
[ -x "$BIN" ] || { echo "skip: $BIN not built"; exit 77; }
RACK_ID=hc$HOSTS$$
RACK_ID=${RACK_ID:0:10}
rack_up "$HOSTS"
KEY=$RACK_DIR/cluster.key
"$BIN" genkey "$KEY" 1 >/dev/null
fail() { echo "FAIL: $*" >&2; exit 1; }

# rack_spawn gives up after 2 s without the process's pid file, which a loaded machine can
# exceed; the process still starts, so wait for its pid file ($RACK_DIR/procs/<host>.<name>.pid).
wait_pidfile() {
    for _ in $(seq 300); do
        [ -s "$RACK_DIR/procs/$1.node.pid" ] && return 0
        sleep 0.1
    done
    return 1
}
start_servers() {
    for ((i = 2; i <= HOSTS; i++)); do
        rack_spawn "h$i" node "$BIN" -i eth0 -k "$KEY" -n "h$i" --blade "b$i" --chassis c1 \
            --rack r1 --roles hypervisor,storage --state "$RACK_DIR/h$i.state" ||
            wait_pidfile "h$i" || fail "h$i did not start"
    done
}
# Waits until every server has its port open and its channel running ("ready" is logged right
# after), so h1's discovery and traffic find them however slowly a loaded machine started them.
# Discovery itself is then h1's event-driven --wait-peers, not a guess at how long it takes.
wait_servers_ready() {
    for ((i = 2; i <= HOSTS; i++)); do
        rack_wait_log "h$i" node 'ready: node' 30 || fail "h$i did not start"
    done
}
stop_servers() {
    for ((i = 2; i <= HOSTS; i++)); do rack_kill "h$i" node TERM || true; done
}

for loss in $LOSSES; do
    echo "== loss $loss %"
    rack_loss "$loss"
    start_servers
    wait_servers_ready
    out=$RACK_DIR/client-$loss.out
    rack_exec h1 "$BIN" -i eth0 -k "$KEY" -n h1 --wait-peers $((HOSTS - 1)) --wait-s 30 \
        -r "$REQUESTS" -b "$BULK" >"$out" 2>"$out.err" || { cat "$out" "$out.err"; fail "client"; }
    grep '^result' "$out"
    if [ "$loss" = 0 ]; then
        s=$(awk -F'seconds=' '/^result: discovered/ {print $2}' "$out")
        awk -v s="$s" 'BEGIN {exit !(s <= 2.0)}' || fail "discovery took ${s}s (> 2 s)"
    fi
    [ "$(grep -c "requests=$REQUESTS ok=$REQUESTS failed=0" "$out")" = $((HOSTS - 1)) ] ||
        fail "requests incomplete"
    [ "$(grep -c 'intact=yes' "$out")" = $((HOSTS - 1)) ] || fail "bulk not intact"
    stop_servers
    for ((i = 2; i <= HOSTS; i++)); do
        # Each request ran once: the server executed exactly REQUESTS echoes (+1 status).
        ex=$(rack_log "h$i" node | awk '/^requests_executed/ {print $2; exit}')
        [ "$ex" = $((REQUESTS + 1)) ] || fail "h$i executed $ex requests, want $((REQUESTS + 1))"
    done
done
rack_loss 0

echo "== attack campaign"
start_servers
wait_servers_ready
# Capture genuine frames between h1 and h2, then replay, forge and inject them at h2.
rack_capture_start "$RACK_DIR/genuine.pcap" 'ether proto 0x88b5'
rack_exec h1 "$BIN" -i eth0 -k "$KEY" -n h1 --wait-peers $((HOSTS - 1)) --wait-s 30 -r 300 \
    >/dev/null 2>&1 || fail "capture traffic"
sleep 0.3
rack_capture_stop
before=$(rack_exec h2 true && rack_log h2 node | wc -l)
rack_exec h1 /usr/bin/python3 "$MV_SOURCE_DIR/tests/integration/ethproto/attack.py" \
    "$RACK_DIR/genuine.pcap" "$(rack_mac h2)" 12000 >"$RACK_DIR/attack.out" ||
    fail "attack script"
cat "$RACK_DIR/attack.out"
sent=$(awk '/^sent/ {print $2}' "$RACK_DIR/attack.out")
sleep 0.5
stop_servers
log=$(rack_log h2 node)
# Only the top-level counters (the first block) of h2's final report.
get() { echo "$log" | awk -v k="$1" '$1 == k {print $2; exit}'; }
executed=$(get requests_executed)
delivered=$(get msgs_delivered)
failed=0
for c in malformed unknown_key expired_key bad_tag replay stale_incarnation wrong_dst; do
    failed=$((failed + $(get "auth_fail_$c")))
done
echo "attack: sent=$sent counted=$failed executed=$executed delivered=$delivered"
[ "$sent" -ge 10000 ] || fail "campaign too small"
[ "$failed" -ge "$sent" ] || fail "only $failed of $sent attack frames counted"
# h2 executed only what h1 genuinely asked for: 300 echoes (+0 status, none requested).
[ "$executed" = 300 ] || fail "h2 executed $executed requests, want 300"
echo PASS
