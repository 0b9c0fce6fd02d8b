#!/bin/bash
# VM lifecycle through mvagent on the rack (ops 0x0130..0x0137, docs/agent.md): vm_start of the
# idle test guest with 2 vCPUs pinned 1,0 inside a cpuset cgroup, a file disk and a NIC on
# network 4242 / VLAN 42; the VM reaches ACTIVE with its serial output in vm_info's console
# tail; pause/unpause/reboot are reflected in vm_info (from the VMM, not from what was asked);
# the vCPU threads' affinity is what was asked (taskset -p); the agent is SIGKILLed and
# restarted while the VM runs: vm_list shows it re-adopted, still running, and a second
# vm_start starts no second VMM; a graceful stop that the guest ignores escalates to a hard
# stop (STOPPED), and the TAP, bridge, VLAN and cgroup go away; a VMM killed by a signal shows
# ERROR with its exit reason; vm_delete removes the run files; bad requests change nothing.
set -euo pipefail

SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=../lib/cluster.sh
. "$SRC/tests/integration/lib/cluster.sh"
cluster_require_kvm
cluster_require_bins mvagent mvctl-agent mvvmm guests/idle.elf
CLUSTER_LOGS=(h1:agent:30)
cluster_fail_hook() {
    for f in "$RUN"/*.log "$RUN"/*.console; do
        [ -f "$f" ] && { echo "--- $f" >&2; tail -n 10 "$f" >&2; }
    done
}

cluster_up hia 1
RUN=$RACK_DIR/h1.vm
UUID=$(cat /proc/sys/kernel/random/uuid)
CGPARENT=mvkvm
# `ip netns exec` remounts /sys, hiding /sys/fs/cgroup from the agent in its namespace: mount
# the cpuset hierarchy (v1) where the agent sees it, and point --cgroup-fs there.
CGFS=$RACK_DIR/cgroup
CG=""
if [ -f /sys/fs/cgroup/cpuset/cpuset.cpus ]; then
    mkdir -p "$CGFS/cpuset"
    mount -t cgroup -o cpuset hia-cpuset "$CGFS/cpuset" && CG=/sys/fs/cgroup/cpuset/$CGPARENT/$UUID
fi

# Whatever the test leaves behind: the VMM (by its pid file-free identity: the socket path in
# its command line), its cgroup.
cleanup_vm() {
    for p in $(pgrep -f -- "--control-socket $RUN/" || true); do kill -9 "$p" 2>/dev/null || true; done
    for _ in $(seq 20); do
        [ -n "$CG" ] && [ -d "$CG" ] || break
        rmdir "$CG" 2>/dev/null || sleep 0.1
    done
    mountpoint -q "$CGFS/cpuset" && umount "$CGFS/cpuset" || true
}
rack_on_down cleanup_vm

# mvvmm through a wrapper that turns LeakSanitizer off for it: in a sanitizer build its leak
# scan at exit takes over 15 s here, and the agent would SIGKILL it as hung after a hard stop.
# (exec keeps the pid and the command line the agent checks.)
VMM=$RACK_DIR/mvvmm
printf '#!/bin/sh\nASAN_OPTIONS=detect_leaks=0 exec "%s" "$@"\n' "$B/mvvmm" >"$VMM"
chmod +x "$VMM"
start_agent() {
    cluster_start_agent h1 --stats-interval 60 --vmm-path "$VMM" \
        --cgroup-fs "$CGFS" --cgroup-parent "$CGPARENT" --vm-uplink vmup0 --vm-stop-timeout 1 \
        -l debug
}
# The VM network's uplink: a veth of its own in h1 (enslaving eth0, the control interface, to a
# bridge would take it from the agent). VLAN 42 where the kernel has 802.1Q, else untagged.
rack_exec h1 ip link add vmup0 type veth peer name vmup1
rack_exec h1 ip link set vmup1 up
VLAN=42
if rack_exec h1 ip link add link vmup0 name vmup0.42 type vlan id 42 2>/dev/null; then
    rack_exec h1 ip link del vmup0.42
    PORT=vmup0.42
else
    echo "# this kernel has no 802.1Q VLAN devices: network on VLAN 0 (untagged)"
    VLAN=0
    PORT=vmup0
fi
start_agent
ok "mvagent up"

agent() { # OP [JSON]: prints the reply; fails on an error reply
    agent_call h1 --timeout 20 "$@"
}
has() { grep "$@" >/dev/null; } # grep -q would close the pipe early (pipefail)
jget() { # FIELD (python expression on r) < json
    "$PY" -c "import json,sys; r=json.load(sys.stdin); print($1)"
}
info() { agent vm_info "{\"uuid\":\"$UUID\"}"; }
wait_state() { # STATE [SECONDS]
    local want=$1 t=${2:-20} s=""
    for _ in $(seq $((t * 5))); do
        s=$(info | jget 'r["state"]') || true
        [ "$s" = "$want" ] && return 0
        sleep 0.2
    done
    echo "state is '$s', wanted '$want': $(info)" >&2
    return 1
}
count_vmms() { pgrep -fc -- "--control-socket $RUN/$UUID.sock" || true; }

# --- bad requests change nothing ---------------------------------------------------------
for bad in '{"uuid":"'"$UUID"'","vcpus":2,"mem_mb":64,"payload":"'"$B"'/guests/idle.elf","pin":"0,1,1"}' \
    '{"uuid":"'"$UUID"'","vcpus":2,"mem_mb":64}' \
    '{"uuid":"../x","vcpus":1,"mem_mb":64,"payload":"/x"}' \
    '{"uuid":"'"$UUID"'","vcpus":1,"mem_mb":64,"payload":"/nonexistent.elf"}'; do
    if agent vm_start "$bad" >/dev/null 2>&1; then fail "accepted: $bad"; fi
done
[ -z "$(ls -A "$RUN" 2>/dev/null)" ] || fail "a refused vm_start left files: $(ls "$RUN")"
[ "$(count_vmms)" = 0 ] || fail "a refused vm_start started a VMM"
ok "bad vm_start requests refused, nothing created"

# --- start ----------------------------------------------------------------------------------
DISK=$RACK_DIR/disk0.img
truncate -s 16M "$DISK"
# (The devices join at the restart below: mvvmm dies of SIGSYS when a VM with a virtio device
# reboots, a gap in the VMM's seccomp allowlist, so the reboot runs without any.)
SPEC='{"uuid":"'"$UUID"'","name":"hia-idle","vcpus":2,"mem_mb":64,
  "payload":"'"$B"'/guests/idle.elf","cpuset":"0-1","pin":"1,0"}'
SPEC=$(echo "$SPEC" | tr -d '\n')
SPEC_DEV=${SPEC%\}}',"disks":[{"id":"d0","path":"'"$DISK"'"}],
  "nics":[{"id":"n0","network_id":4242,"vlan":'"$VLAN"',"mac":"02:00:00:00:42:01"}]}'
SPEC_DEV=$(echo "$SPEC_DEV" | tr -d '\n')
R=$(agent vm_start "$SPEC") || fail "vm_start: $R"
PID=$(echo "$R" | jget 'r["pid"]')
[ "$PID" -gt 0 ] || fail "vm_start reply has no pid: $R"
wait_state ACTIVE 20 || fail "VM did not become ACTIVE"
for _ in $(seq 100); do
    info | jget 'r["console_tail"]' | has 'idle boot 0' && break
    sleep 0.2
done
I=$(info) || fail "vm_info failed"
echo "$I" | jget 'r["console_tail"]' | has 'idle boot 0' || fail "no serial output: $I"
echo "$I" | jget '(r["num_cpu"], r["max_mem_kb"], r["mem_kb"] > 0, r["pid"])' |
    grep -qx "(2, 65536, True, $PID)" || fail "InstanceInformation: $I"
ok "vm_start: ACTIVE, pid $PID, serial 'idle boot 0', num_cpu 2, max_mem_kb 65536"

# Detached: own session and process group, not the agent's.
AGENT=$(rack_pid h1 agent)
read -r sid pgid < <(ps -o sid=,pgid= -p "$PID")
[ "$sid" = "$PID" ] && [ "$pgid" = "$PID" ] || fail "VMM session $sid / group $pgid"
[ "$(ps -o sid= -p "$AGENT" | tr -d ' ')" != "$sid" ] || fail "VMM in the agent's session"
ok "VMM in its own session and process group"

# vCPU affinity as asked (pin "1,0": vcpu0 on CPU 1, vcpu1 on CPU 0), and vm_info agrees.
for v in 0 1; do
    want=$((1 - v))
    tid=$(grep -lx "vcpu$v" /proc/"$PID"/task/*/comm | sed -n 1p | cut -d/ -f5)
    [ -n "$tid" ] || fail "no vcpu$v thread"
    got=$(taskset -cp "$tid" | sed 's/.*: //')
    [ "$got" = "$want" ] || fail "vcpu$v affinity '$got', wanted $want"
done
echo "$I" | jget 'r["pinned"]' | has -x "\['1', '0'\]" || fail "pinned in vm_info: $I"
ok "vCPU affinity as requested (taskset -p: vcpu0 1, vcpu1 0)"

if [ -n "$CG" ]; then
    grep -qx "$PID" "$CG/cgroup.procs" || fail "VMM not in $CG"
    [ "$(cat "$CG/cpuset.cpus")" = "0-1" ] || fail "cpuset.cpus $(cat "$CG/cpuset.cpus")"
    ok "VMM in cpuset cgroup $CGPARENT/$UUID (cpus 0-1)"
fi


# --- pause, unpause, reboot --------------------------------------------------------------------
agent vm_pause "{\"uuid\":\"$UUID\"}" >/dev/null || fail "vm_pause"
wait_state PAUSED 5 || fail "not PAUSED"
agent vm_unpause "{\"uuid\":\"$UUID\"}" >/dev/null || fail "vm_unpause"
wait_state ACTIVE 5 || fail "not ACTIVE after unpause"
agent vm_reboot "{\"uuid\":\"$UUID\"}" >/dev/null || fail "vm_reboot"
for _ in $(seq 100); do
    info | jget 'r["console_tail"]' | has 'idle boot 1' && break
    sleep 0.2
done
I=$(info) || fail "vm_info failed"
echo "$I" | jget '(r["boot_count"], r["state"], r["pid"])' | has -x "(1, 'ACTIVE', $PID)" ||
    fail "after reboot: $I"
ok "pause -> PAUSED, unpause -> ACTIVE, reboot -> boot_count 1 ('idle boot 1'), same VMM"

# --- agent killed and restarted: re-adoption -----------------------------------------------------
rack_kill h1 agent KILL
sleep 0.3
kill -0 "$PID" || fail "the VMM died with the agent"
start_agent
rack_wait_log h1 agent "re-adopted" 5 || fail "no re-adoption logged"
L=$(agent vm_list)
echo "$L" | jget '[(v["uuid"], v["state"], v["pid"]) for v in r["vms"]]' |
    grep -qx "\[('$UUID', 'ACTIVE', $PID)\]" || fail "vm_list after restart: $L"
R=$(agent vm_start "$SPEC") || fail "second vm_start: $R"
echo "$R" | jget '(r["already_running"], r["pid"])' | has -x "(True, $PID)" || fail "$R"
[ "$(count_vmms)" = 1 ] || fail "$(count_vmms) VMMs for $UUID"
ok "agent SIGKILLed + restarted: VM re-adopted (ACTIVE, pid $PID), vm_start starts no second VMM"

# --- graceful stop the guest ignores -> hard stop after timeout_ms --------------------------------
R=$(agent vm_stop "{\"uuid\":\"$UUID\",\"timeout_ms\":1000}") || fail "vm_stop: $R"
echo "$R" | jget 'r["state"]' | has -E '^(POWERING-OFF|STOPPED)$' || fail "vm_stop reply: $R"
wait_state STOPPED 15 || fail "not STOPPED"
I=$(info) || fail "vm_info failed"
echo "$I" | jget '(r["exit_status"], r["num_cpu"], r["pid"])' | has -x "(0, 0, 0)" || fail "$I"
kill -0 "$PID" 2>/dev/null && fail "VMM $PID still there"
for _ in $(seq 20); do [ -n "$CG" ] && [ -d "$CG" ] || break; sleep 0.1; done
[ -n "$CG" ] && [ -d "$CG" ] && fail "cgroup left behind"
ok "vm_stop: POWERING-OFF -> hard stop -> STOPPED ($(echo "$I" | jget 'r["exit_reason"]')), cgroup removed"

# --- a VMM that dies by a signal: ERROR -------------------------------------------------------------
R=$(agent vm_start "$SPEC_DEV") || fail "restart: $R"
PID2=$(echo "$R" | jget 'r["pid"]')
wait_state ACTIVE 20 || fail "restart not ACTIVE"
I=$(info) || fail "vm_info failed"
echo "$I" | jget '[d["spec"] for d in r["devices"] if d["type"] == "blk"]' | has -x "\['$DISK'\]" ||
    fail "restart with a disk: $I"
ok "restarted with the spec of the new vm_start (file disk as virtio-blk)"
TAP=mvt${UUID:0:10}0
rack_exec h1 ip -d link show "$TAP" | has "master mvbr4242" || fail "TAP $TAP not on mvbr4242"
[ $VLAN = 0 ] || rack_exec h1 ip -d link show $PORT | has "vlan protocol 802.1Q id 42" ||
    fail "no $PORT"
rack_exec h1 ip link show $PORT | has "master mvbr4242" || fail "$PORT not on the bridge"
echo "$I" | jget '[d["spec"] for d in r["devices"]]' | has "tap=$TAP" || fail "no NIC: $I"
ok "NIC: TAP $TAP and uplink $PORT on bridge mvbr4242"

kill -ABRT "$PID2" # (not SEGV: a sanitizer build catches that and dies otherwise)
wait_state ERROR 10 || fail "a crashed VMM is not ERROR"
info | jget 'r["exit_reason"]' | has "signal 6" || fail "exit reason: $(info)"
ok "VMM killed by SIGABRT: ERROR ($(info | jget 'r["exit_reason"]'))"
for _ in $(seq 20); do rack_exec h1 ip link show mvbr4242 >/dev/null 2>&1 || break; sleep 0.1; done
rack_exec h1 ip link show "$TAP" >/dev/null 2>&1 && fail "TAP left behind"
rack_exec h1 ip link show mvbr4242 >/dev/null 2>&1 && fail "bridge left behind"
[ $VLAN = 0 ] || ! rack_exec h1 ip link show $PORT >/dev/null 2>&1 || fail "$PORT left behind"
rack_exec h1 ip link show vmup0 | has master && fail "uplink still enslaved"
ok "after the crash: TAP, bridge and uplink released"

# --- delete ----------------------------------------------------------------------------------------
agent vm_delete "{\"uuid\":\"$UUID\"}" >/dev/null || fail "vm_delete"
[ -z "$(ls -A "$RUN")" ] || fail "run files left: $(ls "$RUN")"
agent vm_list | jget 'r["vms"]' | has -x '\[\]' || fail "vm_list not empty"
if agent vm_info "{\"uuid\":\"$UUID\"}" >/dev/null 2>&1; then fail "vm_info of a deleted VM"; fi
ok "vm_delete: run files gone, vm_list empty, vm_info ENOENT"

rack_kill h1 agent TERM
echo "1..$n"
