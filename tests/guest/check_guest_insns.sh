#!/bin/bash
# Disassembles every test guest and fails on instructions PVM cannot run in (emulated) ring 0:
# SSE/AVX/x87 registers and ops, xsave family, cmpxchg16b, popcnt, crc32, rdtscp, BMI, stac/clac,
# int3 and int N.
set -u
dir=${1:?usage: check_guest_insns.sh GUEST_DIR}
shopt -s nullglob
elfs=("$dir"/*.elf)
if [ ${#elfs[@]} -eq 0 ]; then
    echo "check_guest_insns: no guests in $dir" >&2
    exit 1
fi
pattern='%[xyz]mm[0-9]|%st(\(|\b)|%mm[0-9]|\bf(ld|st|stp|add|sub|mul|div|init|nstenv|ldenv|xsave|xrstor|wait|ninit|nsave|rstor|ild|ist|istp|ucom|com|chs|abs|sqrt|xch)[a-z]*\b|\bxsave|\bxrstor|\bcmpxchg16b|\bpopcnt|\bcrc32|\brdtscp|\b(andn|bextr|blsi|blsmsk|blsr|bzhi|lzcnt|tzcnt|pdep|pext|rorx|sarx|shlx|shrx|mulx|adcx|adox)\b|\bstac\b|\bclac\b|\bint3\b|\bint +\$|\bemms\b|\bldmxcsr|\bstmxcsr|\bvzero'
bad=0
for elf in "${elfs[@]}"; do
    hits=$(objdump -d --no-show-raw-insn "$elf" | grep -P '^\s+[0-9a-f]+:\t' | grep -E "$pattern")
    if [ -n "$hits" ]; then
        echo "FAIL $(basename "$elf"): instructions PVM cannot run in ring 0:"
        echo "$hits" | head -20
        bad=1
    else
        echo "ok   $(basename "$elf")"
    fi
done
exit $bad
