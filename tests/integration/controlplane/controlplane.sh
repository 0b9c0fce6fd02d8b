#!/bin/bash
# mvctld on the wire, on a rack of 3 hosts (mvagent + mvstored with sparse-file drives each) and
# a controller host: hosts, cores and drives appear in the API within 5 s of the agents starting;
# a host whose agent is killed goes down and comes back when it restarts; datastores and
# resource groups are created, listed, edited and deleted through osd with D2.3's example
# commands, and creating a datastore really formats the drives on the hosts (checked with the
# agent's drive_list); a failed format leaves the datastore in state error with the host's
# reason; restarting mvctld loses nothing.
set -euo pipefail

SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=../lib/cluster.sh
. "$SRC/tests/integration/lib/cluster.sh"
cluster_require_bins mvctld osd mvagent mvctl-agent
cluster_have_stored
[ $HAVE_STORED = 1 ] || echo "note: mvstored not built: agents run without it (no drives)"
CLUSTER_LOGS=(ctl:mvctld:40 h1:agent:8 h2:agent:8 h3:agent:8)

cluster_up hcw 3
cluster_mvctld_config hcw-secret

start_agent() { # host
    local h=$1 args=()
    [ $HAVE_STORED = 0 ] || args=(--stored-socket "$RACK_DIR/$h.stored.sock" --roles hypervisor,storage)
    cluster_spawn_agent "$h" --hello-interval 1 --stats-interval 60 \
        --blade "b${h#h}" --chassis c1 --rack r1 "${args[@]}"
}
start_stored() { cluster_start_stored "$1" -d "$RACK_DIR/$1.d1.img" -d "$RACK_DIR/$1.d2.img"; }
N1=$(node_of h1) N2=$(node_of h2) N3=$(node_of h3)

for h in h1 h2 h3; do
    if [ $HAVE_STORED = 1 ]; then
        truncate -s 256M "$RACK_DIR/$h.d1.img" "$RACK_DIR/$h.d2.img"
        start_stored $h
    fi
done
start_mvctld

# --- discovery: hosts, cores, drives within 5 s of the agents starting --------------------------
DRIVES=$((2 * HAVE_STORED))
t0=$(date +%s%N)
for h in h1 h2 h3; do start_agent $h; done
wait_for 5 "len(j) == 3 and all(x['state'] == 'online' and x['source'] == 'agent' and
    x['core_count'] >= 1 and x['disk_count'] == $DRIVES for x in j) and
    sorted(x['id'] for x in j) == sorted(['$N1', '$N2', '$N3']) and
    sorted(x['labels']['blade'] for x in j) == ['b1', 'b2', 'b3']" get_nodes ||
    fail "3 hosts with cores and drives did not appear within 5 s"
ms=$((($(date +%s%N) - t0) / 1000000))
CORES=$(osdj get_cores)
check "len(j) >= 3 and all(c['id'].startswith(c['node_id'] + '_') for c in j)" "$CORES" ||
    fail "cores: $CORES"
ok "3 hosts, $(echo "$CORES" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))') cores and $((3 * DRIVES)) drives in the API ${ms} ms after the agents started"
[ $HAVE_STORED = 1 ] || {
    echo "all $n checks passed (without mvstored: datastore checks skipped)"
    exit 0
}

# disk ids by host and path (the agent's stable id), from the API
DISKS=$(osdj get_disks)
disk() { # host drive -> disk id
    "$PY" -c "import json,sys; print([d['id'] for d in json.loads(sys.argv[1])
        if d['node_id'] == sys.argv[2] and d['serial_number'].endswith(sys.argv[3])][0])" \
        "$DISKS" "$(node_of "$1")" "/$1.$2.img"
}
D1A=$(disk h1 d1) D2A=$(disk h2 d1) D2B=$(disk h2 d2) D3A=$(disk h3 d1) D3B=$(disk h3 d2)
# drive_on HOST DRIVE 'python expression over d' (the agent's drive_list entry)
drive_on() {
    local out
    out=$(agent_call "$1" drive_list '{}') || return 1
    "$PY" -c "import json,sys
d = [x for x in json.loads(sys.argv[1])['drives'] if x['path'].endswith(sys.argv[2])][0]
sys.exit(0 if ($3) else 1)" "$out" "/$1.$2.img"
}

# --- liveness: a killed agent's host goes down, and comes back ----------------------------------
CORE2=${N2}_0
rack_kill h2 agent KILL
t0=$(date +%s%N)
wait_for 6 "[x['state'] for x in j if x['id'] == '$N2'] == ['offline']" get_nodes ||
    fail "h2 not offline after its agent was killed"
ms=$((($(date +%s%N) - t0) / 1000000))
check "all(not d['is_up'] for d in j if d['node_id'] == '$N2') and
    all(d['is_up'] for d in j if d['node_id'] == '$N1')" "$(osdj get_disks)" ||
    fail "h2's disks still up"
ok "h2 offline ${ms} ms after its agent was killed; its disks are not up"
# While it is down, a datastore on its drive is refused up front (the hosts format the drives).
if osd create_datastore --name=bad --disks="$D2B" --replicas=1 2>"$RACK_DIR/err"; then
    fail "datastore on an offline node accepted"
fi
grep -q '1019' "$RACK_DIR/err" || fail "offline node error: $(cat "$RACK_DIR/err")"
ok "create_datastore on the offline node's drive refused: $(grep -o '1019.*' "$RACK_DIR/err" | head -c 100)"
start_agent h2
wait_for 5 "[x['state'] for x in j if x['id'] == '$N2'] == ['online']" get_nodes ||
    fail "h2 did not come back"
ok "h2 online again after its agent restarted"

# --- D2.3's examples: datastores ---------------------------------------------------------------
out=$(osd create_datastore --name=test --disks="$D1A,$D2A" --replicas=1 --thick=1) ||
    fail "create_datastore: $out"
echo "$out" | grep_q test || fail "create_datastore output: $out"
DS=$(osdj get_datastores --filter=id,name | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
wait_for 10 "j['state'] == 'enabled' and 'state_reason' not in j and
    all(d['is_up'] for d in j['disks']) and 0 < j['total'] < 2 * 256 * 2**20" \
    get_datastore --id="$DS" || fail "datastore $DS not enabled after formatting"
drive_on h1 d1 "d['state'] == 'online' and d['datastore'] == '$DS' and d['overcommit_pct'] == 100" &&
    drive_on h2 d1 "d['state'] == 'online' and d['datastore'] == '$DS'" ||
    fail "drives not formatted on h1/h2: $(agent_call h1 drive_list '{}')"
drive_on h3 d1 "d['state'] == 'unformatted'" || fail "h3's drive was touched"
TOTAL=$(osdj get_datastore --id="$DS" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["total"])')
ok "create_datastore formatted h1 and h2's drives (drive_list: online, datastore $DS); total $TOTAL bytes usable"
osd get_datastores | grep_q -E "^ID +NAME" || fail "get_datastores table"
d=$(osdj edit_datastore --id="$DS" --overcommit=20 --trigger_repair=periodic --periodic_repair_sec=3600)
check "j['overcommit_disk'] == '20' and j['repair_volume_policy']['period_seconds'] == 3600" "$d" ||
    fail "edit_datastore: $d"
osdj add_datastore_disks --id="$DS" --disks="$D3A" >/dev/null || fail "add_datastore_disks"
wait_for 10 "j['state'] == 'enabled' and len(j['disks']) == 3" get_datastore --id="$DS" ||
    fail "added disk not formatted"
drive_on h3 d1 "d['datastore'] == '$DS' and d['overcommit_pct'] == 120" ||
    fail "h3's drive not formatted with the new overcommit: $(agent_call h3 drive_list '{}')"
osdj remove_datastore_disks --id="$DS" --disks="$D3A" >/dev/null || fail "remove_datastore_disks"
for _ in $(seq 50); do drive_on h3 d1 "'datastore' not in d" && break; sleep 0.1; done
drive_on h3 d1 "'datastore' not in d" || fail "removed disk not released on h3"
ok "edit_datastore, add_datastore_disks (formatted on h3, overcommit 120 %), remove_datastore_disks (released on h3)"

# --- a failed format: the datastore shows error with the host's reason -------------------------
rack_kill h3 stored TERM
osd create_datastore --name=broken --disks="$D3B" --replicas=1 >/dev/null || fail "create broken"
wait_for 10 "[x['state'] for x in j if x['name'] == 'broken'] == ['error']" get_datastores ||
    fail "datastore on a host without mvstored not in state error"
BROKEN=$(osdj get_datastores --if=name=broken)
check "'mvstored' in j[0]['state_reason'] and j[0]['disks'][0]['state'] == 'error'" "$BROKEN" ||
    fail "error reason: $BROKEN"
BID=$(echo "$BROKEN" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
osd delete_datastore --id="$BID" >/dev/null || fail "delete broken datastore"
start_stored h3
ok "format failure (h3 without mvstored): state error, reason '$(echo "$BROKEN" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["state_reason"][:70])')'"

# --- D2.3's examples: resource groups ------------------------------------------------------------
N_A=$(osdj create_network --name=public --cidr=10.0.0.0/24 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
N_B=$(osdj create_network --name=private --cidr=10.1.0.0/24 | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["id"])')
C1=$(osdj get_cores --node_id="$N1" --filter=id | "$PY" -c 'import json,sys; print(",".join(c["id"] for c in json.load(sys.stdin)[:2]))')
osd create_group --name=super --core_ids="$C1" --network_ids="$N_A,$N_B" --datastores="$DS" |
    grep -q super || fail "create_group"
G=$(osdj get_groups)
check "len(j) == 1 and j[0]['cores'] == sorted('$C1'.split(',')) and j[0]['datastores'] == ['$DS']
    and j[0]['total_storage'] > 0" "$G" || fail "get_groups: $G"
GID=$(echo "$G" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
g=$(osdj edit_group --id="$GID" --cpu_overcommit=4 --enable_ft --ft_unit=blade --ft_max_failures=1)
check "j['cpu_overcommit'] == 4 and j['fault_tolerance']['unit'] == 'blade'" "$g" || fail "edit_group: $g"
g=$(osdj add_group_cores --id="$GID" --core_ids="$CORE2")
check "'$CORE2' in j['cores']" "$g" || fail "add_group_cores: $g"
g=$(osdj remove_group_cores --id="$GID" --core_ids="$CORE2")
check "'$CORE2' not in j['cores']" "$g" || fail "remove_group_cores: $g"
ok "create_group / get_groups / edit_group / add_group_cores / remove_group_cores"

# --- restart mvctld: nothing lost --------------------------------------------------------------
snap() {
    for c in get_datastores get_groups get_networks get_disks get_cores get_nodes; do
        osdj $c | "$PY" -c 'import json,sys
# what the agents measure anew in every inventory is not state
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("last_seen", "free_memory_mb", "avail_memory")}
    return [strip(v) for v in x] if isinstance(x, list) else x
print(json.dumps(strip(json.load(sys.stdin)), sort_keys=True))'
    done
}
before=$(snap)
stop_mvctld
start_mvctld
sleep 1.5 # the agents' next inventories arrive
after=$(snap)
[ "$before" = "$after" ] || {
    diff <(echo "$before" | tr '}' '\n') <(echo "$after" | tr '}' '\n') | head -20 >&2
    fail "state changed across a restart of mvctld"
}
ok "mvctld restarted: datastores, groups, networks, disks, cores, nodes unchanged"

# --- delete (D2.3's delete commands): drives released on the hosts -----------------------------
if osd delete_datastore --id="$DS" 2>/dev/null; then fail "deleted a datastore a group uses"; fi
osd delete_group --id="$GID" >/dev/null || fail "delete_group"
osd delete_datastore --id="$DS" >/dev/null || fail "delete_datastore"
for _ in $(seq 50); do
    drive_on h1 d1 "'datastore' not in d" && drive_on h2 d1 "'datastore' not in d" && break
    sleep 0.1
done
drive_on h1 d1 "'datastore' not in d" && drive_on h2 d1 "'datastore' not in d" ||
    fail "drives not released after delete_datastore"
osd delete_network --id="$N_A" >/dev/null && osd delete_network --id="$N_B" >/dev/null ||
    fail "delete_network"
check "j == []" "$(osdj get_datastores)" && check "j == []" "$(osdj get_groups)" ||
    fail "objects left after delete"
check "all(d['datastore'] is None and d['is_up'] for d in j)" "$(osdj get_disks)" ||
    fail "disks not free and up after delete"
ok "delete_group, delete_datastore (drives released on h1, h2), delete_network"

stop_mvctld
echo "all $n checks passed"
