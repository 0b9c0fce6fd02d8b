#!/bin/bash
# Networking from inside an instance, on a rack of 2 hosts (mvagent + mvstored each) and a
# controller host: an instance created with osd on h2, its root volume on h1's drive (served over
# AoE), one NIC on a network. Its guest (guest_inst_net.c) checks its disk, then exchanges frames
# of 60..1514 bytes through its virtio-net NIC, the TAP and the network's bridge mvbr<net> with an
# echo peer on the far end of the agent's VM uplink (vmup0 <-> vmup1, where a physical switch
# port would be), and prints "inst net ok" only when every reply came back intact. The host side
# checks that the frames carry the MAC mvctld gave the NIC, and that the bridge learned it on the
# instance's TAP; a peer that corrupts one reply makes the guest fail (after a reboot); deleting
# the instance removes its TAP and bridge.
set -euo pipefail

SRC=${MV_SOURCE_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)}
# shellcheck source=../lib/cluster.sh
. "$SRC/tests/integration/lib/cluster.sh"
cluster_require_kvm
cluster_require_bins mvctld osd mvagent mvctl-agent mvstored mvvmm guests/inst_net.elf
CLUSTER_LOGS=(ctl:mvctld:30 h1:stored:5 h2:agent:15 h2:peer:20)
CLUSTER_POLL_S=0.2
FRAMES=6 # guest_inst_net.c
cluster_fail_hook() {
    echo "--- vm1 console" >&2
    field "j.get('console_tail', '')" "$(osdj get_instance_info --id=vm1 2>/dev/null)" >&2
}

cluster_up hinet 2
cluster_mvctld_config hinet-secret "reconcile_interval_ms = 500" "vm_stop_timeout_ms = 2000"

for h in h1 h2; do
    truncate -s 8G "$RACK_DIR/$h.d1.img"
    # The VM network's uplink: vmup0 for the agent's bridge, vmup1 the wire beyond it.
    rack_exec $h ip link add vmup0 type veth peer name vmup1
    rack_exec $h ip link set vmup1 up
    cluster_start_stored $h -u "$RACK_DIR/$h.aoe.sock" -d "$RACK_DIR/$h.d1.img"
done
start_mvctld
for h in h1 h2; do
    cluster_start_agent $h --hello-interval 1 --stats-interval 60 --vmm-path "$B/mvvmm" \
        --stored-socket "$RACK_DIR/$h.stored.sock" --stored-aoe-socket "$RACK_DIR/$h.aoe.sock" \
        --roles hypervisor,storage --cgroup none --vm-uplink vmup0 --vm-stop-timeout 2
done
N1=$(node_of h1) N2=$(node_of h2)
wait_for 10 "len(j) == 2 and all(x['state'] == 'online' and x['disk_count'] == 1 for x in j)" \
    get_nodes || fail "2 hosts with their drive did not come up"

D1=$(field "[d['id'] for d in j if d['node_id'] == '$N1'][0]" "$(osdj get_disks)")
DS=$(field "j['id']" "$(osdj create_datastore --name=ds1 --disks="$D1" --replicas=1)")
wait_for 20 "j['state'] == 'enabled'" get_datastore --id="$DS" || fail "datastore not formatted"
# VLAN 0: this kernel has no 802.1Q devices (docs/agent.md); the uplink joins the bridge itself.
NET=$(field "j['id']" "$(osdj create_network --name=vmnet)")
CORES=$(osdj get_cores --node_id="$N2" | "$PY" -c 'import json,sys; print(",".join(c["id"] for c in json.load(sys.stdin)))')
GA=$(field "j['id']" "$(osdj create_group --name=g --core_ids="$CORES" --datastores="$DS" \
    --network_ids="$NET")")
osd create_volume --name=root1 --size=1 --datastore_id="$DS" >/dev/null || fail "create_volume"
wait_for 15 "j['status'] == 'available' and j['replicas'][0]['node_id'] == '$N1'" get_volume --id=root1 ||
    fail "volume not created on h1"
ok "2 hosts online; datastore $DS and volume root1 on h1's drive, network $NET, group $GA on h2"

# --- the echo peer on h2's uplink wire ---------------------------------------------------------------
# Answers each "inst-net req NN" broadcast from the guest with "inst-net rep NN" to the sender,
# the rest of the frame unchanged, after checking sequence, length-independent pattern and source
# (one MAC for all frames). CORRUPT=K flips the last byte of reply K (the guest must notice).
cat >"$RACK_DIR/echo_peer.py" <<'PYEOF'
import socket, sys
iface, count, corrupt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ETH, TAG = 0x88b7, 15
mine = bytes.fromhex(open("/sys/class/net/%s/address" % iface).read().strip().replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH))
s.bind((iface, ETH))
s.settimeout(120)
print("peer: listening on %s (%s)" % (iface, mine.hex(":")), flush=True)
src = None
for n in range(count):
    while True:
        f, addr = s.recvfrom(4096)
        if addr[2] != socket.PACKET_OUTGOING and f[12:14] == b"\x88\xb7":
            break
    tag = b"inst-net req %02d" % n
    pattern = bytes((n * 37 + i * 13 + 0x5a) & 0xff for i in range(14 + TAG, len(f)))
    if f[0:6] != b"\xff" * 6 or f[6] & 1 or f[14:14 + TAG] != tag or f[14 + TAG:] != pattern:
        sys.exit("peer: error: frame %d (%d bytes) is not request %d: %r" % (n, len(f), n, f[:32]))
    if src is not None and f[6:12] != src:
        sys.exit("peer: error: frame %d from %s, earlier ones from %s" % (n, f[6:12].hex(":"), src.hex(":")))
    src = f[6:12]
    reply = bytearray(src + mine + f[12:14] + b"inst-net rep %02d" % n + f[14 + TAG:])
    if n == corrupt:
        reply[-1] ^= 0x40
    s.send(reply)
    print("peer: frame %d: %d bytes from %s echoed" % (n, len(f), src.hex(":")), flush=True)
print("peer: echoed %d frames from %s" % (count, src.hex(":")), flush=True)
PYEOF
start_peer() { # NAME CORRUPT
    rack_spawn h2 "$1" "$PY" "$RACK_DIR/echo_peer.py" vmup1 $FRAMES "$2"
    rack_wait_log h2 "$1" 'listening' 10 || fail "echo peer did not start: $(rack_log h2 "$1")"
}
start_peer peer -1

# --- the instance: root volume on h1, NIC on the network, running on h2 -----------------------------
t0=$(date +%s%N)
osd create_instance --name=vm1 --resource_group_id="$GA" --vcpus=1 --ram=64 --node_id="$N2" \
    --payload="$B/guests/inst_net.elf" --volumes=root1 --network_ids="$NET" >/dev/null ||
    fail "create_instance"
wait_for 30 "j['state'] == 'ACTIVE' and j['node'] == '$N2'" get_instance --id=vm1 ||
    fail "vm1 not ACTIVE on h2"
wait_for 60 "'inst net ok' in j.get('console_tail', '') or 'FAIL' in j.get('console_tail', '')" \
    get_instance_info --id=vm1 || fail "vm1's guest did not finish its network check"
ms=$((($(date +%s%N) - t0) / 1000000))
CONSOLE=$(field "j.get('console_tail', '')" "$(osdj get_instance_info --id=vm1)")
GLINE=$(grep "inst net ok" <<<"$CONSOLE") || fail "vm1's guest failed (its console below)"
grep_q "inst blk ok" <<<"$CONSOLE" || fail "vm1's guest did not check its disk"
VM1=$(osdj get_instance --id=vm1)
check "j['is_storage_latency_optimized'] == 'none' and len(j['networks']) == 1
    and j['networks'][0]['network_id'] == $NET" "$VM1" || fail "vm1: $VM1"
MAC=$(field "j['networks'][0]['mac']" "$VM1")
ok "vm1 on h2 (root volume served by h1 over AoE): the guest echoed $FRAMES frames (60..1514 bytes) intact through its NIC (${ms} ms)"

# --- the host side: the MAC mvctld assigned is the one on the wire and in the bridge -------------------
rack_wait_log h2 peer "echoed $FRAMES frames from $MAC" 5 ||
    fail "the peer did not see $FRAMES frames from $MAC: $(rack_log h2 peer)"
UPMAC=$(rack_exec h2 cat /sys/class/net/vmup1/address)
[ "$GLINE" = "inst net ok $FRAMES frames mac $MAC peer $UPMAC" ] ||
    fail "guest saw '$GLINE', expected its MAC $MAC and the peer's $UPMAC"
BR=mvbr$NET
TAP=$(rack_exec h2 ip -o link show master "$BR" | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^mvt') ||
    fail "no TAP on $BR"
rack_exec h2 ip -o link show master "$BR" | grep_q ' vmup0@' || fail "vmup0 is not a port of $BR"
rack_exec h2 bridge fdb show br "$BR" | grep_q "^$MAC dev $TAP " ||
    fail "$BR did not learn $MAC on $TAP: $(rack_exec h2 bridge fdb show br "$BR")"
ok "frames from the guest carry its MAC $MAC (osd get_instance), learned by $BR on TAP $TAP; replies from vmup1 ($UPMAC)"

# --- a corrupted reply is caught by the guest ------------------------------------------------------
rack_kill h2 peer
start_peer peer2 2
osd reboot_instance --id=vm1 >/dev/null || fail "reboot"
wait_for 60 "'FAIL inst_net: reply 2 (128 bytes): payload differs' in j.get('console_tail', '')" \
    get_instance_info --id=vm1 || fail "the guest did not notice the corrupted reply"
ok "after a reboot, a peer that flips one byte of reply 2: the guest fails ('payload differs')"

# --- deletion removes the NIC's plumbing -------------------------------------------------------------
osd delete_instance --id=vm1 >/dev/null || fail "delete vm1"
wait_for 30 "len(j) == 0" get_instances || fail "vm1 not deleted"
plumbed() { # the NIC's TAP or bridge still there, or the uplink still enslaved
    rack_exec h2 ip link show "$TAP" >/dev/null 2>&1 || rack_exec h2 ip link show "$BR" >/dev/null 2>&1 ||
        rack_exec h2 ip -o link show vmup0 | grep_q master
}
for _ in $(seq 50); do plumbed || break; sleep 0.2; done
plumbed && fail "h2 still has TAP $TAP or bridge $BR: $(rack_exec h2 ip -br link)"
osd delete_volume --id=root1 >/dev/null || fail "delete_volume"
wait_for 15 "len(j) == 0" get_volumes || fail "volume not deleted"
ok "vm1 deleted: TAP $TAP and bridge $BR gone from h2, uplink released; volume deleted"
stop_mvctld
echo "all $n checks passed"
