#!/bin/bash
# kill -9 of mvstored during writes, 20 times: the initiator retransmits across the restart, every
# write is acknowledged and reads back, and mvstored --check passes at the end.
set -euo pipefail
. "$MV_SOURCE_DIR/tests/rack/rack.sh"
. "$(dirname "$0")/common.sh"
rack_require_root
RACK_ID=hsc$((RANDOM % 100000)) RACK_MTU=9000
ROUNDS=${AOE_CRASH_ROUNDS:-20}
REGION=${AOE_CRASH_REGION:-32}  # MiB per round, each round a fresh (thin, unallocated) region
rack_up 2

format_drive $((ROUNDS * REGION + 64))M
start_stored
ctl "{\"cmd\":\"create\",\"vdisk\":\"crash\",\"size\":$((ROUNDS * REGION * 1048576)),\"shelf\":2,\"slot\":1,\"map\":true}"

interrupted=0
for ((k = 0; k < ROUNDS; k++)); do
    off=$((k * REGION))M
    # --wait: the kill may land while the writer is still attaching (IDENTIFY); attach returns as
    # soon as the target answers, so a long wait costs nothing when nothing is killed.
    aoe h2 verify 2.1 --offset $off --size ${REGION}M --seed $((100 + k)) --write-only \
        --wait 30000 --dead-ms 30000 -q &
    writer=$!
    # 20..149 ms into the writer: attach takes a few ms, a 32 MiB region tens to hundreds (fast
    # when the machine is idle), so most kills land mid-write whatever the load.
    sleep "0.$(printf '%03d' $((RANDOM % 130 + 20)))"
    if kill -0 $writer 2>/dev/null; then
        interrupted=$((interrupted + 1))
    fi
    rack_kill h1 stored KILL
    start_stored
    wait $writer || fail "round $k: writes failed across the crash"
    aoe h2 verify 2.1 --offset $off --size ${REGION}M --seed $((100 + k)) --read-only -q ||
        fail "round $k: acknowledged writes lost"
done
echo "$interrupted of $ROUNDS kills hit a running writer"
[ $interrupted -ge $((ROUNDS / 2)) ] || fail "too few kills landed during writes"
step "earlier rounds still intact"
for ((k = 0; k < ROUNDS; k++)); do
    aoe h2 verify 2.1 --offset $((k * REGION))M --size ${REGION}M --seed $((100 + k)) \
        --read-only -q || fail "round $k data changed later"
done
rack_kill h1 stored TERM
check_drive
echo "PASS"
