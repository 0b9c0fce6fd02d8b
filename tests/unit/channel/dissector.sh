#!/bin/bash
# Decodes frames produced by the channel code with dist/wireshark/mvkvm.lua under tshark and
# checks the fields and that nothing is flagged malformed.
set -euo pipefail
grep_q() { grep "$@" >/dev/null; } # grep -q ends early: SIGPIPE under pipefail
: "${MV_SOURCE_DIR:?}" "${MV_BUILD_DIR:?}"
command -v tshark >/dev/null || { echo "skip: tshark not installed"; exit 77; }
tmp=$(mktemp -d /tmp/hc-dissector.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
"$MV_BUILD_DIR/bin/ctrl_pcap" "$tmp/ctrl.pcap"
ts() { tshark -X "lua_script:$MV_SOURCE_DIR/dist/wireshark/mvkvm.lua" -r "$tmp/ctrl.pcap" "$@" 2>/dev/null; }
fail() { echo "FAIL: $*" >&2; exit 1; }
total=$(ts -T fields -e frame.number | wc -l)
decoded=$(ts -Y mvkvm -T fields -e frame.number | wc -l)
echo "frames: $total decoded: $decoded"
[ "$total" -gt 10 ] && [ "$total" = "$decoded" ] || fail "not every frame decoded as mvkvm"
bad=$(ts -Y '_ws.malformed || _ws.expert.severity >= error' -T fields -e frame.number | wc -l)
[ "$bad" = 0 ] || fail "$bad frames flagged malformed/error"
for t in 1 2 3 4 5; do
    n=$(ts -Y "mvkvm.type == $t" -T fields -e frame.number | wc -l)
    echo "type $t: $n frames"
    [ "$n" -gt 0 ] || fail "no frames of type $t"
done
ts -Y 'mvkvm.type == 3' -T fields -e mvkvm.hello.hostname | grep_q -x host-0 || fail "hostname"
ts -Y 'mvkvm.type == 3' -T fields -e mvkvm.hello.text | grep_q rack-7 || fail "rack label"
ts -Y 'mvkvm.type == 3' -T fields -e mvkvm.src_incarnation | grep_q -x 501 || fail "incarnation"
# The 3000-byte request: two fragments at 0 and 1412 (MTU 1500), op 77, REQUEST flag.
frags=$(ts -Y 'mvkvm.type == 1 && mvkvm.op == 77 && mvkvm.flags.request && mvkvm.msg_len == 3000' \
    -T fields -e mvkvm.frag_off | sort -un | tr '\n' ' ')
[ "$frags" = "0 1412 2824 " ] || fail "fragments: '$frags'"
ts -Y 'mvkvm.flags.response && mvkvm.status == -2' -T fields -e mvkvm.ref | grep_q . ||
    fail "response with status -2"
ts -Y 'mvkvm.type == 5 && eth.type == 0x88b6 && mvkvm.op == 3' -T fields -e mvkvm.payload_len |
    grep -qx 6 || fail "stats datagram"
ts -Y 'mvkvm.key_id == 4' -T fields -e frame.number | grep_q . || fail "key id"
echo PASS
