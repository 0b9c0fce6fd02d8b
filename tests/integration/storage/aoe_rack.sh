#!/bin/bash
# libmvblk -> mvstored on a rack of namespaces (MTU 9000): a large random-pattern write/read/
# verify, two initiators on one target, Mac Mask denial, reservation conflict, correctness under
# 5 % and 20 % frame loss, clean shutdown and a consistent drive afterwards.
set -euo pipefail
. "$MV_SOURCE_DIR/tests/rack/rack.sh"
. "$(dirname "$0")/common.sh"
rack_require_root
RACK_ID=hst$((RANDOM % 100000)) RACK_MTU=9000
rack_up 3 # h1: mvstored; h2, h3: initiators

format_drive 320M
start_stored
ctl '{"cmd":"create","vdisk":"big","size":268435456,"shelf":1,"slot":1,"map":true}'
ctl '{"cmd":"create","vdisk":"small","size":33554432,"shelf":1,"slot":2,"map":true,"thin":false}'

step "discovery"
out=$(aoe h2 discover)
echo "$out"
grep -q '^e1.1 ' <<<"$out" && grep -q '^e1.2 ' <<<"$out" || fail "discovery"
grep -q 'sectors_per_frame=17' <<<"$out" || fail "17 sectors per frame at MTU 9000"
aoe h2 identify 1.1 | grep_q 'sectors: 524288 ' || fail "identify capacity"

step "write/read/verify $SIZE"
aoe h2 verify 1.1 --size "$SIZE" --seed 11 --depth 32 || fail "verify $SIZE"
aoe h2 verify 1.1 --size 1M --seed 12 --read-only -q 2>/dev/null && fail "wrong seed verified"

step "two initiators on one target"
half=$(($(numfmt --from=iec "$SIZE") / 2))
aoe h2 verify 1.1 --size $half --seed 21 -q &
p2=$!
aoe h3 verify 1.1 --offset $half --size $half --seed 22 -q &
p3=$!
wait $p2 || fail "initiator h2"
wait $p3 || fail "initiator h3"
aoe h3 verify 1.1 --size $half --seed 21 --read-only -q || fail "h3 reads h2's half"
aoe h2 verify 1.1 --offset $half --size $half --seed 22 --read-only -q || fail "h2 reads h3's half"

step "Mac Mask denial"
aoe h2 mask 1.2 add "$(rack_mac h2)" | grep_q -i "$(rack_mac h2)" || fail "mask add"
aoe h3 -w 400 identify 1.2 2>/dev/null && fail "masked-out h3 still reaches 1.2"
aoe h3 -w 400 identify 1.1 >/dev/null || fail "mask of 1.2 hid 1.1"
aoe h2 verify 1.2 --size 1M --seed 41 -q || fail "h2 in the mask list is served"
aoe h2 mask 1.2 del "$(rack_mac h2)" >/dev/null || fail "mask del"
aoe h3 identify 1.2 >/dev/null || fail "h3 served again after the mask emptied"

step "reservation conflict"
aoe h2 reserve 1.2 set "$(rack_mac h2)" >/dev/null || fail "reserve"
rc=0
head -c 512 /dev/zero | aoe h3 write 1.2 0 1 2>/dev/null || rc=$?
[ $rc -eq 3 ] || fail "h3's write to a target reserved by h2 returned $rc, want 3 (reserved)"
rc=0
aoe h3 reserve 1.2 set "$(rack_mac h3)" >/dev/null 2>&1 || rc=$?
[ $rc -eq 3 ] || fail "h3 took over the reservation without force"
aoe h3 reserve 1.2 read | grep_q -i "$(rack_mac h2)" || fail "reservation read"
aoe h2 verify 1.2 --size 1M --seed 42 -q || fail "holder h2 is served"
aoe h2 reserve 1.2 set >/dev/null || fail "release"
aoe h3 verify 1.2 --size 1M --seed 43 -q || fail "h3 served after release"

for loss in 5 20; do
    step "frame loss $loss %"
    rack_loss $loss
    aoe h2 verify 1.2 --size 16M --seed $((50 + loss)) --dead-ms 60000 ||
        fail "verify under $loss % loss"
    rack_loss 0
    aoe h3 verify 1.2 --size 16M --seed $((50 + loss)) --read-only -q || fail "after $loss % loss"
done

step "clean shutdown and check"
rack_kill h1 stored TERM || fail "mvstored did not stop on SIGTERM"
rack_log h1 stored | grep_q stopping || fail "no clean shutdown"
check_drive
echo "PASS"
