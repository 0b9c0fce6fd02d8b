#!/bin/bash
# mvvmm's command line: --help/--version, errors that say what is wrong (exit 1, nothing run),
# --config JSON files, and malformed images rejected before the VM starts.
set -u
vmm="$MV_BUILD_DIR/bin/mvvmm"
guests="$MV_BUILD_DIR/bin/guests"
tmp=$(mktemp -d /tmp/hv-cli.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail=0

# expect RC PATTERN ARGS...: mvvmm exits RC and its output matches PATTERN
expect() {
    local want_rc=$1 pattern=$2
    shift 2
    local out rc
    out=$(timeout 20 "$vmm" "$@" 2>&1)
    rc=$?
    if [ "$rc" -ne "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
        echo "FAIL: mvvmm $* -> rc $rc (want $want_rc), output:"
        echo "$out" | head -5
        echo "  (wanted /$pattern/)"
        fail=1
    else
        echo "ok: mvvmm $*"
    fi
}

expect 0 "usage: mvvmm" --help
expect 0 "^mvvmm [0-9]" --version
expect 1 "nothing to run" --mem 64M
expect 1 "mem: 'lots'" --payload x --mem lots
expect 1 "vcpus: '0'" --payload x --vcpus 0
expect 1 "vcpus: '999'" --payload x --vcpus 999
expect 1 "pin: bad CPU" --payload x --pin 1,a
expect 1 "serial: 'tty9'" --payload x --serial tty9
expect 1 "net: 'eth0' must start with tap=" --payload x --net eth0
expect 1 "unknown or incomplete option '--frobnicate'" --payload x --frobnicate
expect 1 "exclude each other" --payload x --kernel y
expect 1 "cannot open /nonexistent" --payload /nonexistent

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "skip: the rest needs /dev/kvm"
    exit $((fail ? 1 : 77))
fi
# malformed images: rejected with the reason, exit 1
head -c 40 "$guests/hello.elf" >"$tmp/trunc.elf"
expect 1 "ELF: truncated header" --payload "$tmp/trunc.elf"
printf 'MZ%0100d' 0 >"$tmp/notelf"
expect 1 "neither an ELF nor a bzImage" --payload "$tmp/notelf"
expect 1 "ELF kernel without a PVH entry note" --kernel "$guests/hello.elf"
# the guest's exit port value becomes mvvmm's status
expect 5 "PASS hello" --payload "$guests/hello.elf" --cmdline exit=5 --no-pit
# JSON config, with flags overriding it
cat >"$tmp/vm.json" <<JSON
{"payload": "$guests/hello.elf", "cmdline": "exit=3", "mem": "64M", "vcpus": 1, "no-pit": true}
JSON
expect 3 "PASS hello" --config "$tmp/vm.json"
expect 9 "PASS hello" --config "$tmp/vm.json" --cmdline exit=9
echo '{"payload": "x", "mem": }' >"$tmp/bad.json"
expect 1 "bad.json:1:" --config "$tmp/bad.json"
echo '{"payload": "x", "vcpus": "many"}' >"$tmp/bad2.json"
expect 1 "bad2.json: vcpus: 'many'" --config "$tmp/bad2.json"
# memory above the 32-bit hole and hugepage-free memfd backing
expect 0 "PASS serial_info" --payload "$guests/serial.elf" --mem 3200M --memfd --cmdline "hello=world answer=42"
# serial to a file
expect 7 "" --payload "$guests/hello.elf" --cmdline exit=7 --serial "file:$tmp/console.log"
if ! grep -q "PASS hello" "$tmp/console.log"; then
    echo "FAIL: --serial file: did not receive the console"
    fail=1
fi
# vNUMA: two vnodes, both bound (mbind) to host node 0; the sizes decide the RAM
expect 0 "PASS smp" --payload "$guests/smp.elf" --vcpus 2 --vnuma "nodes=2,mem=64M:64M,cpus=0:1,pnodes=0:0"
expect 1 "vnuma:" --payload "$guests/smp.elf" --vcpus 2 --vnuma "nodes=2,mem=64M,cpus=0:1"
expect 1 "no such node" --payload "$guests/hello.elf" --vnuma "nodes=1,mem=64M,cpus=0,pnodes=63"
# dropping privileges after setup
if id nobody >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    expect 0 "running as nobody" --payload "$guests/hello.elf" --user nobody
fi
expect 1 "no such user" --payload "$guests/hello.elf" --user hv-no-such-user
# resets re-create the virtio transports after the seccomp filter is in place
truncate -s 1M "$tmp/disk.img"
expect 0 "PASS reboot" --payload "$guests/reboot.elf" --disk "$tmp/disk.img"
# pinning to CPU 0 and floating over all CPUs
expect 0 "PASS smp" --payload "$guests/smp.elf" --vcpus 2 --pin 0
expect 0 "PASS smp" --payload "$guests/smp.elf" --vcpus 2 --pin "float:0-$(($(nproc) - 1))"
exit $fail
