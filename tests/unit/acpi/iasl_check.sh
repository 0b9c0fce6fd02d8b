#!/bin/bash
# Dumps every ACPI table of several configurations with mvacpi-dump and checks each with ACPICA:
# `iasl -d` must decode it without any error, warning or complaint (checksum, truncated
# structure, unknown field), the disassembly must compile back with 0 errors/warnings/remarks,
# and the recompiled body (after the 36-byte header, which names iasl as creator) must be
# byte-identical to ours. iasl 20200925 cannot load a standalone RSDP, so the RSDP is decoded
# here. Finally a table with a broken checksum must be caught, so the check can fail.
# usage: iasl_check.sh path/to/mvacpi-dump
set -u
dump=${1:?usage: iasl_check.sh MVACPI_DUMP}
if ! command -v iasl >/dev/null; then
    echo "skip: iasl (Debian package acpica-tools) is not installed"
    exit 77
fi
work=$(mktemp -d /tmp/ha-iasl.XXXXXX)
trap 'rm -rf "$work"' EXIT
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# check_table FILE.dat: 0 when iasl is fully happy with it.
check_table() {
    local dat=$1 base=${1%.dat} out rc=0
    out=$(cd "$(dirname "$dat")" && iasl -d "$(basename "$dat")" 2>&1)
    if [ ! -s "$base.dsl" ]; then
        echo "  iasl -d produced no output for $dat: $out"
        return 1
    fi
    if grep -qiE 'warning|error|incorrect|invalid|unknown|\*\*\*\*' <<<"$out" ||
        grep -qiE 'warning|error|incorrect|invalid|unknown|\*\*\*\*' "$base.dsl"; then
        echo "  iasl -d complains about $dat:"
        grep -iE 'warning|error|incorrect|invalid|unknown|\*\*\*\*' <<<"$out" "$base.dsl" | head
        rc=1
    fi
    mkdir -p "$base.re"
    out=$(iasl -p "$base.re/t" "$base.dsl" 2>&1)
    if ! grep -q '0 Errors, 0 Warnings, 0 Remarks' <<<"$out"; then
        echo "  recompiling the disassembly of $dat: $(grep -E 'Error|Warning|Remark' <<<"$out" | head -5)"
        rc=1
    elif ! cmp -s <(tail -c +37 "$base.re/t.aml") <(tail -c +37 "$dat"); then
        echo "  recompiled $dat differs from ours after the header"
        rc=1
    fi
    return $rc
}

# check_rsdp DIR: signature, both checksums, revision 2, length 36, XSDT pointer.
check_rsdp() {
    local dir=$1 b sum=0 i xsdt=0
    read -r -a b <<<"$(od -An -tu1 -v "$dir/rsdp.dat" | tr -s ' \n' '  ')"
    [ "${#b[@]}" -eq 36 ] || { echo "  RSDP is ${#b[@]} bytes"; return 1; }
    [ "$(head -c 8 "$dir/rsdp.dat")" = "RSD PTR " ] || { echo "  RSDP signature"; return 1; }
    for i in $(seq 0 19); do sum=$((sum + b[i])); done
    [ $((sum % 256)) -eq 0 ] || { echo "  RSDP checksum"; return 1; }
    for i in $(seq 20 35); do sum=$((sum + b[i])); done
    [ $((sum % 256)) -eq 0 ] || { echo "  RSDP extended checksum"; return 1; }
    [ "${b[15]}" -eq 2 ] && [ "${b[20]}" -eq 36 ] || { echo "  RSDP revision/length"; return 1; }
    for i in $(seq 31 -1 24); do xsdt=$((xsdt * 256 + b[i])); done
    local want
    want=$(awk '$1 == "XSDT" { print $3 }' "$dir/summary")
    [ $((want)) -eq $xsdt ] || { echo "  RSDP points to $xsdt, XSDT is at $want"; return 1; }
    return 0
}

virtio32=()
for i in $(seq 0 31); do
    virtio32+=(--virtio "$((0xd0000000 + i * 0x200)):512:$((16 + i))")
done
configs=(
    "one --vcpus 1 --mem 64M"
    "two --vcpus 4 --mem 1G --vnuma nodes=2,cpus=0-1:2-3,dist=10:20:20:10,pnodes=0:1 --virtio 0xd0000000:4096:5 --virtio 0xd0001000:4096:6"
    "four --vcpus 8 --mem 6G --vnuma nodes=4,remote=30 --i8042 --rtc --gpa 0x9f000"
    "hole --vcpus 3 --apic-ids 0:4:300 --mem 4G --vnuma nodes=2,mem=2G:2G,cpus=0:1-2 --no-com1"
)
for c in "${configs[@]}"; do
    read -r -a args <<<"$c"
    name=${args[0]}
    args=("${args[@]:1}")
    [ "$name" = "four" ] && args+=("${virtio32[@]}")
    dir=$work/$name
    mkdir -p "$dir"
    if ! "$dump" --out "$dir" "${args[@]}" >"$dir/summary" 2>&1; then
        fail "$name: mvacpi-dump failed: $(cat "$dir/summary")"
        continue
    fi
    n=0
    for dat in "$dir"/*.dat; do
        [ "$(basename "$dat")" = rsdp.dat ] && continue
        if check_table "$dat"; then
            n=$((n + 1))
        else
            fail "$name: $(basename "$dat")"
        fi
    done
    check_rsdp "$dir" || fail "$name: rsdp.dat"
    echo "$name: $n tables clean under iasl, RSDP ok ($(tail -1 "$dir/summary"))"
done

# The check must be able to fail: one wrong byte in the SLIT of "two".
if ! cp "$work/two/slit.dat" "$work/two/broken.dat"; then
    fail "no SLIT of \"two\" to corrupt"
fi
printf '\x15' | dd of="$work/two/broken.dat" bs=1 seek=45 conv=notrunc 2>/dev/null
if [ ! -s "$work/two/broken.dat" ] || check_table "$work/two/broken.dat" >/dev/null; then
    fail "a SLIT with a wrong checksum passed the check"
else
    echo "self-check: a corrupted SLIT is rejected"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all tables clean"
