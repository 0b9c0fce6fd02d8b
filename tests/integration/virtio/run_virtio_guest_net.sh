#!/bin/bash
# virtio-net end to end: a TAP in a private network namespace, a host peer on an AF_PACKET
# socket there, mvvmm running the virtio_net test guest attached to the TAP. The guest sends
# three frames (checked by the peer), the peer answers with three (checked by the guest).
set -u
build=${MV_BUILD_DIR:?MV_BUILD_DIR not set}
src=${MV_SOURCE_DIR:?MV_SOURCE_DIR not set}
vmm=$build/bin/mvvmm
guest=$build/bin/guests/virtio_net.elf
py=/usr/bin/python3
# ASan builds: LeakSanitizer's exit-time scan hangs in mvvmm (its seccomp filter blocks the
# ptrace/clone LSan needs), so leak checking is left to the unit tests.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
[ -x "$vmm" ] || { echo "skip: mvvmm not built ($vmm)"; exit 77; }
[ -r "$guest" ] || { echo "skip: guest not built ($guest)"; exit 77; }
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { echo "skip: /dev/kvm missing or not accessible"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "skip: needs root (network namespace, TAP)"; exit 77; }

ns=hvi-vnet-$$
tap=hvitap$(($$ % 10000))
mac=02:68:76:69:00:02
ip netns add "$ns" || { echo "skip: cannot create a network namespace"; exit 77; }
peer_pid=
cleanup() {
    [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null
    ip netns del "$ns" 2>/dev/null
}
trap cleanup EXIT
ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
ip -n "$ns" tuntap add "$tap" mode tap vnet_hdr || exit 1
ip -n "$ns" link set "$tap" up || exit 1

peer_log=$(mktemp /tmp/hvi-netpeer.XXXXXX)
ip netns exec "$ns" $py - "$tap" "$mac" >"$peer_log" 2>&1 <<'PY' &
import socket, sys, time
ETH = 0x88b7
tap, mac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', ''))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH))
s.bind((tap, ETH))
s.settimeout(100)
seen = 0
while seen < 3:
    f = s.recv(2048)
    if f[12:14] != b'\x88\xb7':
        continue
    want = b'hvi-g2h %d' % seen
    if f[6:12] != mac or f[14:14 + len(want)] != want:
        sys.exit("peer: unexpected frame %r" % f[:32])
    print("peer: got guest frame", seen, flush=True)
    seen += 1
for i in range(3):
    payload = (b'hvi-h2g %d' % i).ljust(46, b'\0')
    s.send(mac + b'\x02\x68\x76\x69\x00\xfe' + b'\x88\xb7' + payload)
    time.sleep(0.05)
print("peer: sent 3 frames", flush=True)
PY
peer_pid=$!

ip netns exec "$ns" "$src/tests/guest/run_guest_test.sh" --vmm "$vmm" --guest "$guest" \
    --timeout 120 --name virtio_guest_net --expect virtio_net_init --expect virtio_net_tx \
    --expect virtio_net_rx -- --net "tap=$tap,mac=$mac"
rc=$?
wait "$peer_pid"
peer_rc=$?
peer_pid=
cat "$peer_log"
rm -f "$peer_log"
[ "$rc" -eq 0 ] && [ "$peer_rc" -eq 0 ]
