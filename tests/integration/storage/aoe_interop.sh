#!/bin/bash
# Interop: libmvblk against Debian's vblade (unpadded replies, ATA sector count 0) at MTU 1500
# (2 sectors per frame), and tshark decoding every frame mvstored sends without a malformed one.
set -euo pipefail
. "$MV_SOURCE_DIR/tests/rack/rack.sh"
. "$(dirname "$0")/common.sh"
rack_require_root
command -v vblade >/dev/null || { echo "skip: needs vblade"; exit 77; }
command -v tshark >/dev/null || { echo "skip: needs tshark"; exit 77; }
RACK_ID=hsi$((RANDOM % 100000)) RACK_MTU=1500
VSIZE=${AOE_INTEROP_SIZE:-64M}
rack_up 2

step "libmvblk -> vblade"
truncate -s "$VSIZE" "$RACK_DIR/vblade.img"
rack_spawn h1 vblade vblade 0 1 eth0 "$RACK_DIR/vblade.img"
sleep 0.5
aoe h2 discover 0.1 | grep_q '^e0.1 ' || fail "vblade not discovered"
aoe h2 identify 0.1
aoe h2 verify 0.1 --seed 5 || fail "verify against vblade"
aoe h2 verify 0.1 --size 1M --seed 6 --read-only -q 2>/dev/null && fail "wrong seed verified"
rack_kill h1 vblade TERM || true

step "tshark decodes mvstored's frames"
format_drive 64M
start_stored
ctl '{"cmd":"create","vdisk":"t","size":4194304,"shelf":3,"slot":1,"map":true}'
pcap=$RACK_DIR/aoe.pcap
rack_capture_start "$pcap" 'ether proto 0x88a2'
aoe h2 discover >/dev/null
aoe h2 identify 3.1 >/dev/null
aoe h2 verify 3.1 --size 256K --seed 7 -q
aoe h2 flush 3.1
aoe h2 config 3.1 set "owner=h2" >/dev/null
aoe h2 config 3.1 set "other" >/dev/null 2>&1 || true # error 4
aoe h2 config 3.1 read >/dev/null
aoe h2 mask 3.1 add "$(rack_mac h2)" >/dev/null
aoe h2 mask 3.1 del "$(rack_mac h2)" >/dev/null
aoe h2 reserve 3.1 set "$(rack_mac h2)" >/dev/null
aoe h2 reserve 3.1 read >/dev/null
aoe h2 reserve 3.1 set >/dev/null
aoe h2 read 3.1 8191 2 >/dev/null 2>&1 || true # past the end: IDNF
sleep 0.3
rack_capture_stop
tmac=$(rack_mac h1)
total=$(tshark -r "$pcap" -Y "eth.src == $tmac" 2>/dev/null | wc -l)
aoe_n=$(tshark -r "$pcap" -Y "eth.src == $tmac && aoe" 2>/dev/null | wc -l)
bad=$(tshark -r "$pcap" -Y "eth.src == $tmac && _ws.malformed" 2>/dev/null | wc -l)
tshark -r "$pcap" -Y "eth.src == $tmac" -O aoe 2>/dev/null >"$RACK_DIR/decoded.txt"
echo "frames from mvstored: $total, decoded as AoE: $aoe_n, malformed: $bad"
[ "$total" -gt 100 ] || fail "too few frames captured"
[ "$aoe_n" -eq "$total" ] || fail "frames not decoded as AoE"
[ "$bad" -eq 0 ] || fail "malformed frames"
grep -qi 'malformed' "$RACK_DIR/decoded.txt" && fail "malformed in decode"
grep -q 'Config string present' "$RACK_DIR/decoded.txt" || grep_q 'Error: 4' "$RACK_DIR/decoded.txt" ||
    echo "note: tshark did not name error 4"
rack_kill h1 stored TERM
check_drive
echo "PASS"
