#!/bin/bash
# mvagent on a rack of 3 hosts (each with mvstored on sparse-file drives): a listener on a 4th
# host receives statistics reports from every host with all metric groups of D2.3 §2.6.1;
# mvctl-perfc dumps, reads and resets the performance counters (reset = baseline: they count up
# again); drive operations are relayed to mvstored over the channel; bad requests get an error
# and change nothing; a request signed with the wrong key is not executed.
set -euo pipefail

SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=../lib/cluster.sh
. "$SRC/tests/integration/lib/cluster.sh"
cluster_require_bins mvagent mvctl-perfc mvctl-agent mvstats-listen
cluster_have_stored
CLUSTER_LOGS=(h1:agent:20 h2:agent:20 h3:agent:20)

cluster_up hag 3
FORGED=$RACK_DIR/forged.key
cluster_new_key "$FORGED" # same key id, different secret: what an attacker without the key can do

for h in h1 h2 h3; do
    args=()
    if [ $HAVE_STORED = 1 ]; then
        truncate -s 256M "$RACK_DIR/$h.d1.img" "$RACK_DIR/$h.d2.img"
        cluster_start_stored $h -d "$RACK_DIR/$h.d1.img" -d "$RACK_DIR/$h.d2.img"
        args=(--stored-socket "$RACK_DIR/$h.stored.sock" --roles hypervisor,storage)
    fi
    cluster_spawn_agent $h --stats-interval 1 --hello-interval 1 \
        --blade b${h#h} --chassis c1 --rack r1 "${args[@]}"
done
for h in h1 h2 h3; do
    rack_wait_log $h agent 'ready' 10 || fail "$h: mvagent did not start"
done
ok "3 agents up${HAVE_STORED:+ (mvstored: $HAVE_STORED)}"

# --- statistics: every host, every group -------------------------------------------------
OUT=$RACK_DIR/stats.json
rack_exec ctl "$B/mvstats-listen" -i eth0 -k "$K" --json --count 9 --timeout 20 >"$OUT" ||
    fail "listener got fewer than 9 reports: $(wc -l <"$OUT")"
nodes=$(for h in h1 h2 h3; do rack_mac $h | awk -F: '{print $3$4$5$6}'; done | tr '\n' ' ')
"$PY" - "$OUT" $nodes <<'EOF' || fail "statistics reports incomplete"
import json, sys
want = set(sys.argv[2:])
groups = ["host", "pcpu", "numa", "pool", "guest", "vcpu", "guest_mem", "vif", "vbd"]
seen = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    assert r["complete"], r
    missing = [g for g in groups if g not in r["groups"]]
    assert not missing, f"{r['node_id']}: groups missing {missing}"
    h = r["groups"]["host"]
    assert len(h) == 1 and h[0]["pcpus"] >= 1 and h[0]["mem_total"] > h[0]["mem_free"] > 0, h
    assert h[0]["cpu_pools"] == len(r["groups"]["pool"]) == 1
    assert len(r["groups"]["pcpu"]) == h[0]["pcpus"]
    assert r["interval_ms"] == 1000
    seen.setdefault(r["node_id"], []).append(r["report_id"])
assert set(seen) == want, f"reports from {sorted(seen)}, want {sorted(want)}"
for node, ids in seen.items():
    assert ids == sorted(ids) and len(set(ids)) == len(ids), (node, ids)
print("stats from", sorted(seen))
EOF
ok "listener received complete reports with all 9 groups from h1, h2, h3"

# A listener with another key accepts nothing.
if rack_exec ctl "$B/mvstats-listen" -i eth0 -k "$FORGED" --count 1 --timeout 3 >/dev/null 2>&1; then
    fail "a listener with the wrong key accepted a report"
fi
ok "reports do not verify under another key"

# --- performance counters -----------------------------------------------------------------
MAC1=$(rack_mac h1 | tr -d :)
perfc() { rack_exec ctl "$B/mvctl-perfc" -i eth0 --mvmac "$MAC1" -k "$K" "$@"; }
total() { # total NAME: TOTAL of one counter
    perfc --perfc-get "$1" | sed -n "s/^$1 *TOTAL\[ *\([0-9]*\)\].*/\1/p"
}
DUMP=$(perfc --perfc-dump) || fail "perfc-dump failed"
sed -n 1p <<<"$DUMP" | grep_q -E '^Performance counters SHOW \(now = 0x[0-9A-F]{8}:[0-9A-F]{8}\)$' ||
    fail "dump header: $(echo "$DUMP" | head -n 1)"
for name in exceptions vmexits 'apic timer interrupts' 'page faults' 'domain page tlb flushes' \
    hypercalls '#interrupts' '#IPIs' 'sched: context switches' 'halt exits'; do
    echo "$DUMP" | grep_q "^$name  *TOTAL\[ *[0-9]*\]  CPU00\[" || fail "dump lacks '$name'"
done
ok "perfc-dump prints the App. 6.3 layout ($(($(echo "$DUMP" | wc -l) - 1)) counters)"

before=$(total '#interrupts')
[ "${before:-0}" -gt 1000 ] || fail "#interrupts before reset: '$before'"
perfc --perfc-reset | grep_q 'RESET' || fail "perfc-reset"
after=$(total '#interrupts')
[ "$after" -lt "$before" ] || fail "reset did not lower #interrupts ($before -> $after)"
sleep 1
later=$(total '#interrupts')
[ "$later" -gt "$after" ] || fail "#interrupts did not count up after reset ($after -> $later)"
ok "perfc-reset zeroes (#interrupts $before -> $after) and counting resumes ($later)"
if perfc --perfc-get 'no such counter' 2>"$RACK_DIR/err"; then
    fail "unknown counter accepted"
fi
grep -q 'no performance counter named' "$RACK_DIR/err" || fail "error text: $(cat "$RACK_DIR/err")"
ok "unknown counter name: clear error"

# --- a forged request is not executed --------------------------------------------------------
sleep 1
v1=$(total '#interrupts')
if rack_exec ctl "$B/mvctl-perfc" -i eth0 --mvmac "$MAC1" -k "$FORGED" --timeout 2 \
    --perfc-reset >/dev/null 2>&1; then
    fail "a request signed with the wrong key was answered"
fi
v2=$(total '#interrupts')
[ "$v2" -ge "$v1" ] || fail "forged reset was executed ($v1 -> $v2)"
ok "forged perfc-reset not executed (#interrupts $v1 -> $v2)"

# --- requests over the channel: validation and the storage relay ---------------------------
agent() { agent_mac_call "$@"; }
agent "$MAC1" ping '{"echo":"hi"}' | grep_q '"echo":"hi"' || fail "ping"
if agent "$MAC1" perfc_reset '{"name":7}' 2>"$RACK_DIR/err"; then fail "bad request accepted"; fi
grep -q 'must be a string' "$RACK_DIR/err" || fail "bad request error: $(cat "$RACK_DIR/err")"
v3=$(total '#interrupts')
[ "$v3" -ge "$v2" ] || fail "an invalid reset request reset the counters"
if agent "$MAC1" 0x0777 2>"$RACK_DIR/err"; then fail "unknown op accepted"; fi
grep -q 'unknown operation 0x0777' "$RACK_DIR/err" || fail "unknown op error: $(cat "$RACK_DIR/err")"
ok "invalid requests get clear errors and change nothing"

INV=$(agent "$MAC1" inventory) || fail "inventory"
echo "$INV" | "$PY" -c '
import json, sys
inv = json.load(sys.stdin)
assert inv["node_id"] == sys.argv[1], inv["node_id"]
assert inv["labels"] == {"blade": "b1", "chassis": "c1", "rack": "r1"}, inv["labels"]
assert len(inv["cpus"]) >= 1 and inv["cpus"][0]["id"].startswith(sys.argv[1] + "_")
if sys.argv[2] == "1":
    assert len(inv["drives"]) == 2, inv["drives"]
    assert all(d["state"] == "unformatted" and d["size_bytes"] == 256 << 20 for d in inv["drives"])
' "${MAC1:4}" $HAVE_STORED || fail "inventory content: $INV"
ok "inventory over the channel (labels, cores, drives)"

if [ $HAVE_STORED = 1 ]; then
    D1=$RACK_DIR/h1.d1.img
    agent "$MAC1" drive_format "{\"drive\":\"$D1\",\"datastore\":\"ds1\",\"chunk_size\":1048576}" \
        >/dev/null || fail "drive_format"
    agent "$MAC1" replica_create '{"vdisk":"vd1","size":67108864,"map":true,"shelf":7,"slot":1}' \
        >/dev/null || fail "replica_create"
    LIST=$(agent "$MAC1" drive_list) || fail "drive_list"
    echo "$LIST" | "$PY" -c '
import json, sys
d = {x["path"]: x for x in json.load(sys.stdin)["drives"]}
f = d[sys.argv[1]]
assert f["state"] == "online" and f["datastore"] == "ds1", f
r = f["replicas"]
assert len(r) == 1 and r[0]["vdisk"] == "vd1" and r[0]["mapped"] and r[0]["shelf"] == 7, r
' "$D1" || fail "drive list after create: $LIST"
    if agent "$MAC1" drive_format "{\"drive\":\"$D1\"}" 2>"$RACK_DIR/err"; then
        fail "reformat of an online drive without force accepted"
    fi
    grep -q 'mvstored: .*force' "$RACK_DIR/err" || fail "reformat error: $(cat "$RACK_DIR/err")"
    agent "$MAC1" replica_unmap '{"vdisk":"vd1"}' >/dev/null || fail "replica_unmap"
    agent "$MAC1" replica_delete '{"vdisk":"vd1"}' >/dev/null || fail "replica_delete"
    agent "$MAC1" drive_list | grep_q '"vdisk":"vd1"' && fail "replica still listed after delete"
    ok "drive format / replica create, map, unmap, delete relayed to mvstored"
fi

# --- clean shutdown -----------------------------------------------------------------------
rack_kill h2 agent TERM
rack_log h2 agent | grep_q 'stopping:' || fail "h2 agent did not log its shutdown"
if rack_log h2 agent | grep_q 'Sanitizer'; then fail "sanitizer report in the h2 agent log"; fi
ok "SIGTERM: clean shutdown"
echo "all $n checks passed"
