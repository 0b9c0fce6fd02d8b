#!/usr/bin/python3
"""The Linux boot protocol end to end: the stock Debian cloud kernel, extracted to an ELF
vmlinux and entered through PVH, must print its banner, echo exactly the command line given,
report an e820 map matching the configured memory (below and across the 3 GiB hole), and find
its initrd where mvvmm put it.
Linux cannot boot further here (PVM), so the VM is stopped through the control socket as soon
as the lines are seen; the control socket's stats are checked on the way."""
import glob
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmmtest  # noqa: E402


def e820_expected(mem):
    low = min(mem, 0xC0000000)
    rows = [(0, 0x9FBFF, "usable"), (0x9FC00, 0xFFFFF, "reserved"), (0x100000, low - 1, "usable")]
    if mem > 0xC0000000:
        rows.append((0x100000000, 0x100000000 + mem - 0xC0000000 - 1, "usable"))
    return ["BIOS-e820: [mem 0x%016x-0x%016x] %s" % r for r in rows]


def vmlinux(build):
    kernels = sorted(glob.glob("/boot/vmlinuz-*"))
    if not kernels:
        vmmtest.skip("no /boot/vmlinuz-* kernel to boot")
    src = kernels[-1]
    out = os.path.join(build, "hv-test", "vmlinux-" + os.path.basename(src))
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(out), exist_ok=True)
        extractor = os.path.join(os.path.dirname(os.path.abspath(__file__)), "extract_vmlinux.py")
        p = subprocess.run(["/usr/bin/python3", extractor, src, out], capture_output=True,
                           text=True)
        if p.returncode:
            if "No such file" in p.stderr or "not found" in p.stderr:
                vmmtest.skip("cannot decompress %s: %s" % (src, p.stderr.strip()))
            raise AssertionError("extracting %s failed: %s" % (src, p.stderr))
    return out


def boot(build, kernel, mem, vcpus):
    tag = "%08x" % random.getrandbits(32)
    cmdline = "earlyprintk=serial,ttyS0,115200 console=ttyS0 mvtest=%s" % tag
    sock = "/tmp/hv-linux-%s.sock" % tag
    initrd = "/tmp/hv-linux-%s.initrd" % tag
    with open(initrd, "wb") as f:
        f.write(os.urandom(65536))
    vmm = vmmtest.Vmm([os.path.join(build, "bin", "mvvmm"), "--kernel", kernel, "--mem",
                       str(mem), "--vcpus", str(vcpus), "--cmdline", cmdline, "--initrd", initrd,
                       "--control-socket", sock, "--stop-timeout", "0", "--name", "linux-" + tag],
                      sock)
    try:
        # ~15-30 s here (ring 0 is emulated); more on a loaded machine
        vmm.wait_for(lambda l: "Linux version" in l, 90, "the Linux banner")
        got = vmm.wait_for(lambda l: "Command line:" in l, 10, "the command line")
        echoed = got.split("Command line: ", 1)[1]
        if echoed != cmdline:
            raise AssertionError("command line echoed as %r, passed %r" % (echoed, cmdline))
        for row in e820_expected(mem):
            vmm.wait_for(lambda l, r=row: l.endswith(r), 10, "e820 row '%s'" % row)
        # the initrd sits page-aligned at the top of RAM below the 32-bit hole
        top = min(mem, 0xC0000000)
        want = "RAMDISK: [mem 0x%08x-0x%08x]" % (top - 65536, top - 1)
        vmm.wait_for(lambda l: l.endswith(want), 45, "'%s'" % want)
        e820_lines = [l for l in vmm.lines if "BIOS-e820:" in l]
        if len(e820_lines) != len(e820_expected(mem)):
            raise AssertionError("e820 has %d rows, expected %d" % (len(e820_lines),
                                                                     len(e820_expected(mem))))
        info = vmm.control({"cmd": "info"})
        assert info["ok"] and info["boot"] == "pvh" and info["vcpus"] == vcpus, info
        assert info["memory_bytes"] == mem, info
        stats = vmm.control({"cmd": "stats"})
        assert stats["ok"], stats
        assert stats["vmm_exits"]["io"]["total"] > 100, stats["vmm_exits"]["io"]
        assert len(stats["kvm_vcpu"]) == vcpus
        assert stats["kvm_vcpu"][0]["exits"]["value"] > 0, "KVM's per-vCPU exit counter"
        assert any(p["name"] == "vmexits" for p in stats["perfc"]), "perfc vmexits"
        assert "kvm_vm" in stats and len(stats["kvm_vm"]) > 0
        rep = vmm.control({"cmd": "stop", "force": True})
        assert rep["ok"], rep
        rc = vmm.wait_exit(15)
        if rc != 0:
            raise AssertionError("mvvmm exited %d after a forced stop" % rc)
    finally:
        vmm.kill()
        os.unlink(initrd)
    print("ok: %d MiB, %d vCPUs" % (mem >> 20, vcpus))


def main():
    vmmtest.require_kvm()
    build = vmmtest.build_dir()
    if not shutil.which("lz4") and not shutil.which("zstd"):
        print("note: lz4/zstd missing; only gzip/xz/bzip2 kernels can be extracted")
    kernel = vmlinux(build)
    # one boot, bounded to ~60 s: RAM both below and above the 32-bit hole, two vCPUs (the
    # e820 layout of smaller guests is covered by the unit tests)
    boot(build, kernel, 3584 << 20, 2)
    print("PASS linux_boot")


if __name__ == "__main__":
    main()
