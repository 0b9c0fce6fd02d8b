#!/bin/bash
# Instances end to end on a rack of 3 hosts (mvagent + mvstored with a sparse-file drive each)
# and a controller host (mvctld): a datastore, a network and resource groups created with osd; a
# volume on h1's drive; an instance booted on h2 whose root volume is served over AoE by h1 (the
# guest writes, flushes and reads back its disk); stop / start / pause / unpause / reboot each
# leave the VM in the state the VMM reports; cold migration to h1 (restart on the target, the
# disk now local); cpu_overcommit and pinning visible in the VMM's vCPU affinity and enforced by
# 422 refusals; killing the agent and restarting it leaves the VM running and re-adopted;
# restarting mvctld changes nothing; deleting removes the VMs and the volume's replica.
set -euo pipefail

SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=../lib/cluster.sh
. "$SRC/tests/integration/lib/cluster.sh"
cluster_require_kvm
cluster_require_bins mvctld osd mvagent mvctl-agent mvstored mvvmm guests/inst_blk.elf guests/idle.elf
CLUSTER_LOGS=(ctl:mvctld:40 h1:agent:15 h1:stored:5 h2:agent:15 h2:stored:5 h3:agent:15 h3:stored:5)
CLUSTER_POLL_S=0.2

cluster_up hic 3
cluster_mvctld_config hic-secret "reconcile_interval_ms = 500" "vm_stop_timeout_ms = 2000"

# schema NAME JSON: the live response against docs/api/internal.yaml (when jsonschema exists)
schema() {
    "$PY" - "$SRC/docs/api/internal.yaml" "$1" "$2" <<'PYEOF' || fail "$1 does not match internal.yaml: $2"
import json, sys
try:
    import jsonschema, yaml
except ImportError:
    sys.exit(0)
spec = yaml.safe_load(open(sys.argv[1]))
body = json.loads(sys.argv[3])
schema = spec["components"]["schemas"][sys.argv[2]]
resolver = jsonschema.RefResolver.from_schema(spec)
for item in (body if isinstance(body, list) else [body]):
    jsonschema.Draft202012Validator(schema, resolver=resolver).validate(item)
PYEOF
}
start_stored() {
    cluster_start_stored "$1" -u "$RACK_DIR/$1.aoe.sock" -d "$RACK_DIR/$1.d1.img"
}
start_agent() {
    cluster_start_agent "$1" --hello-interval 1 --stats-interval 60 --vmm-path "$B/mvvmm" \
        --stored-socket "$RACK_DIR/$1.stored.sock" --stored-aoe-socket "$RACK_DIR/$1.aoe.sock" \
        --roles hypervisor,storage --cgroup none --vm-uplink vmup0 --vm-stop-timeout 2
}
N1=$(node_of h1) N2=$(node_of h2) N3=$(node_of h3)
host_of() { case $1 in "$N1") echo h1 ;; "$N2") echo h2 ;; "$N3") echo h3 ;; esac }

VLAN=100
for h in h1 h2 h3; do
    truncate -s 8G "$RACK_DIR/$h.d1.img"
    # VM networks ride on an uplink of their own (eth0 carries the control plane).
    rack_exec $h ip link add vmup0 type veth peer name vmup1
    rack_exec $h ip link set vmup1 up
    if [ $h = h1 ] && ! rack_exec h1 ip link add link vmup0 name vmup0.9 type vlan id 9 2>/dev/null; then
        VLAN=0
    fi
    rack_exec h1 ip link del vmup0.9 2>/dev/null || true
    start_stored $h
done
start_mvctld
for h in h1 h2 h3; do start_agent $h; done
wait_for 10 "len(j) == 3 and all(x['state'] == 'online' and x['disk_count'] == 1 for x in j)" \
    get_nodes || fail "3 hosts with their drive did not come up"
ok "3 hosts online (mvagent + mvstored each)"

# --- datastore, network, resource groups (osd) ---------------------------------------------------
DISKS=$(osdj get_disks)
D1=$(field "[d['id'] for d in j if d['node_id'] == '$N1'][0]" "$DISKS")
DS=$(field "j['id']" "$(osdj create_datastore --name=ds1 --disks="$D1" --replicas=1)")
wait_for 20 "j['state'] == 'enabled'" get_datastore --id="$DS" || fail "datastore not formatted"
if [ $VLAN != 0 ]; then
    NET=$(field "j['id']" "$(osdj create_network --name=vmnet --vlan --vlan_tag=$VLAN)")
else
    NET=$(field "j['id']" "$(osdj create_network --name=vmnet)")
fi
cores_of() { osdj get_cores --node_id="$1" | "$PY" -c 'import json,sys; print(",".join(c["id"] for c in json.load(sys.stdin)))'; }
GA=$(field "j['id']" "$(osdj create_group --name=shared --core_ids="$(cores_of "$N1"),$(cores_of "$N2")" \
    --datastores="$DS" --network_ids="$NET" --cpu_overcommit=2)")
GB=$(field "j['id']" "$(osdj create_group --name=pinned --core_ids="$(cores_of "$N3")" \
    --datastores="$DS" --network_ids="$NET" --enable_cpu_pinning)")
ok "datastore $DS on h1's drive, network $NET (VLAN $VLAN), groups $GA (overcommit 2) and $GB (pinning)"

# --- a volume on h1 and an instance on h2 booting from it -----------------------------------------
osd create_volume --name=root1 --size=1 --datastore_id="$DS" >/dev/null || fail "create_volume"
wait_for 15 "j['status'] == 'available' and j['replicas'][0]['node_id'] == '$N1'" get_volume --id=root1 ||
    fail "volume not created on h1"
agent_call h1 drive_list '{}' | grep_q '"vdisk"' || fail "no replica on h1's drive"
ok "volume root1 created: replica on h1, mapped over AoE"

t0=$(date +%s%N)
osd create_instance --name=vm1 --resource_group_id="$GA" --vcpus=2 --ram=64 --node_id="$N2" \
    --payload="$B/guests/inst_blk.elf" --volumes=root1 --network_ids="$NET" >/dev/null ||
    fail "create_instance"
wait_for 30 "j['state'] == 'ACTIVE' and j['node'] == '$N2'" get_instance --id=vm1 ||
    fail "vm1 not ACTIVE on h2"
wait_for 60 "'inst blk ok' in j.get('console_tail', '')" get_instance_info --id=vm1 ||
    fail "vm1's guest did not verify its disk"
ms=$((($(date +%s%N) - t0) / 1000000))
VM1=$(osdj get_instance --id=vm1)
check "j['volumes'][0]['status'] == 'in-use' and j['is_storage_latency_optimized'] == 'none'
    and j['networks'][0]['network_id'] == $NET" "$VM1" || fail "vm1: $VM1"
schema Instance "$VM1"
schema Volume "$(osdj get_volumes)"
schema InstanceInformation "$(osdj get_instance_info --id=vm1)"
ok "vm1 ACTIVE on h2, root volume served by h1 over AoE: guest wrote, flushed and read back its disk (${ms} ms)"

# --- lifecycle: every action ends in the state the VMM reports ----------------------------------
act() { # action expected-state
    osd "$1"_instance --id=vm1 >/dev/null || fail "$1"
    wait_for 30 "j['state'] == '$2' and j['task_state'] is None" get_instance --id=vm1 ||
        fail "$1: not $2"
}
act pause PAUSED
schema Instance "$(osdj get_instances)"
check "j['state_name'] == 'PAUSED' and j['live']" "$(osdj get_instance_info --id=vm1)" ||
    fail "info after pause"
act unpause ACTIVE
osd stop_instance --id=vm1 >/dev/null || fail "stop"
wait_for 30 "j['state'] in ('STOPPED', 'ERROR') and j['task_state'] is None" get_instance --id=vm1 ||
    fail "stop: not STOPPED"
if [ "$(field "j['state']" "$(osdj get_instance --id=vm1)")" = ERROR ]; then
    # Slow VMM teardown (sanitizer builds): the agent killed it after its hard-stop deadline
    # and reports that truthfully; anything else is a failure.
    rack_log h2 agent | grep_q "after a hard stop: SIGKILL" || fail "stop: ERROR"
    echo "# note: the agent had to SIGKILL the VMM (slow teardown): state ERROR"
fi
act start ACTIVE
wait_for 60 "'inst blk ok' in j.get('console_tail', '')" get_instance_info --id=vm1 ||
    fail "vm1 did not boot again after start"
act reboot ACTIVE
wait_for 60 "'boot 1' in j.get('console_tail', '')" get_instance_info --id=vm1 ||
    fail "no second boot after reboot"
ok "pause -> PAUSED, unpause -> ACTIVE, stop -> STOPPED, start -> ACTIVE, reboot -> boots again"

# --- placement: overcommit and pinning -----------------------------------------------------------
# Group A on h2: 2 cores x cpu_overcommit 2 = 4 vCPUs, vm1 holds 2.
if osd create_instance --name=big --resource_group_id="$GA" --vcpus=3 --ram=64 --node_id="$N2" \
    --payload="$B/guests/idle.elf" 2>"$RACK_DIR/err"; then fail "3 more vCPUs on h2 accepted"; fi
grep -q "6020" "$RACK_DIR/err" && grep -q "at most 2 free" "$RACK_DIR/err" ||
    fail "overcommit refusal: $(cat "$RACK_DIR/err")"
osd create_instance --name=oc --resource_group_id="$GA" --vcpus=2 --ram=32 --node_id="$N2" \
    --payload="$B/guests/idle.elf" >/dev/null || fail "create oc"
wait_for 30 "j['state'] == 'ACTIVE'" get_instance --id=oc || fail "oc not ACTIVE"
# Both VMs float over h2's two cores (cpuset 0-1): 4 vCPUs on 2 cores.
affinity() { # pid -> "vcpuN:mask ..." of its vCPU threads
    local pid=$1 t out=""
    for t in /proc/"$pid"/task/*; do
        case $(cat "$t/comm") in vcpu*) out+="$(cat "$t/comm"):$(taskset -p "${t##*/}" | awk '{print $NF}') " ;; esac
    done
    echo "$out"
}
PID1=$(field "j['pid']" "$(osdj get_instance --id=vm1)")
PIDOC=$(field "j['pid']" "$(osdj get_instance --id=oc)")
A1=$(affinity "$PID1") AOC=$(affinity "$PIDOC")
[ "$(echo "$A1 $AOC" | tr ' ' '\n' | grep -c ':3$')" = 4 ] || fail "overcommit affinity: $A1 / $AOC"
ok "cpu_overcommit 2: 3 more vCPUs on h2 refused (422, 6020); 2 more run: 4 vCPUs on cores 0-1 ($A1$AOC)"

osd create_instance --name=pin --resource_group_id="$GB" --vcpus=2 --ram=32 \
    --payload="$B/guests/idle.elf" >/dev/null || fail "create pin"
wait_for 30 "j['state'] == 'ACTIVE' and j['node'] == '$N3' and j['pin'] == '0,1'" get_instance --id=pin ||
    fail "pin not ACTIVE on h3 with pin 0,1"
AP=$(affinity "$(field "j['pid']" "$(osdj get_instance --id=pin)")")
echo "$AP" | grep_q "vcpu0:1 " && echo "$AP" | grep_q "vcpu1:2 " || fail "pinned affinity: $AP"
if osd create_instance --name=pin2 --resource_group_id="$GB" --vcpus=1 --ram=32 \
    --payload="$B/guests/idle.elf" 2>"$RACK_DIR/err"; then fail "a third pinned vCPU accepted"; fi
grep -q 6022 "$RACK_DIR/err" || fail "pinning refusal: $(cat "$RACK_DIR/err")"
ok "pinning: vCPU i on its own core of h3 ($AP); no free core left -> 422 (6022)"

# --- cold migration to h1: the volume becomes local ------------------------------------------------
schema Instance "$(osdj migrate_instance --id=vm1 --node_id="$N1" --restart_after=true)"
wait_for 60 "j['state'] == 'ACTIVE' and j['node'] == '$N1' and j['task_state'] is None
    and j['is_storage_latency_optimized'] == 'fully'" get_instance --id=vm1 || fail "vm1 not on h1"
wait_for 60 "'inst blk ok' in j.get('console_tail', '')" get_instance_info --id=vm1 ||
    fail "vm1 did not verify its disk on h1"
agent_call h2 vm_list '{}' | grep_q "$(field "j['uuid']" "$VM1")" && fail "vm1 still known on h2"
ok "vm1 migrated to h1 (stopped on h2, removed there, restarted on h1, disk now local)"

# --- agent killed and restarted: the VM keeps running and is re-adopted --------------------------
PID1=$(field "j['pid']" "$(osdj get_instance --id=vm1)")
kill -KILL "$(rack_pid h1 agent)"
sleep 1
kill -0 "$PID1" || fail "vm1's VMM died with its agent"
start_agent h1
wait_for 20 "j['state'] == 'ACTIVE' and j['pid'] == $PID1 and j['node'] == '$N1'" get_instance --id=vm1 ||
    fail "vm1 not re-adopted"
rack_log h1 agent | grep_q "re-adopted" || fail "agent did not re-adopt"
[ "$(rack_log ctl mvctld | grep -c "vm_start sent to node $N1")" = 1 ] ||
    fail "vm_start sent again after the agent restart"
ok "agent on h1 killed and restarted: vm1 (pid $PID1) kept running and was re-adopted, not restarted"

# --- controller restart: nothing changes ---------------------------------------------------------
BEFORE=$(osdj get_instances --filter=name,node,state,pid,uuid)
STARTS=$(rack_log ctl mvctld | grep -c "vm_start sent" || true)
stop_mvctld
start_mvctld
sleep 4
AFTER=$(osdj get_instances --filter=name,node,state,pid,uuid)
[ "$BEFORE" = "$AFTER" ] || fail "instances changed across the restart: $BEFORE -> $AFTER"
[ "$(rack_log ctl mvctld | grep -c "vm_start sent" || true)" = 0 ] || fail "a VM was started after the restart"
ok "mvctld restarted: instances, hosts, pids unchanged, nothing started ($STARTS starts before)"

# --- deletion ---------------------------------------------------------------------------------------
for i in vm1 oc pin; do osd delete_instance --id=$i >/dev/null || fail "delete $i"; done
wait_for 30 "len(j) == 0" get_instances || fail "instances not deleted"
kill -0 "$PID1" 2>/dev/null && fail "vm1's VMM still runs"
osd delete_volume --id=root1 >/dev/null || fail "delete_volume"
wait_for 15 "len(j) == 0" get_volumes || fail "volume not deleted"
agent_call h1 drive_list '{}' | grep_q '"vdisk"' && fail "replica left on h1"
ok "instances deleted (VMMs gone), volume deleted (replica gone from h1)"
stop_mvctld
echo "all $n checks passed"
