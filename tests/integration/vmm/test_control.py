#!/usr/bin/python3
"""The control socket against a running VM (the idle test guest): info, pause/resume, stats
(VMM exit counters, KVM VM and vCPU stats, perfc view), malformed requests, reboot, graceful
stop timing out into a hard stop, and SIGTERM."""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmmtest  # noqa: E402


def main():
    vmmtest.require_kvm()
    build = vmmtest.build_dir()
    mvvmm = os.path.join(build, "bin", "mvvmm")
    guest = os.path.join(build, "bin", "guests", "idle.elf")
    sock = "/tmp/hv-control-%d.sock" % os.getpid()
    vmm = vmmtest.Vmm([mvvmm, "--payload", guest, "--vcpus", "2", "--control-socket", sock,
                       "--stop-timeout", "500", "--name", "ctl"], sock)
    try:
        vmm.wait_for(lambda l: l == "idle boot 0", 20, "the guest's first boot")
        info = vmm.control({"cmd": "info"})
        assert info["ok"] and info["state"] == "running", info
        assert info["name"] == "ctl" and info["vcpus"] == 2 and info["boot"] == "payload", info
        assert info["boot_count"] == 0, info
        # the seccomp filter is in place on every thread (mode 2 = filter)
        for tid in os.listdir("/proc/%d/task" % info["pid"]):
            with open("/proc/%d/task/%s/status" % (info["pid"], tid)) as f:
                mode = [l for l in f if l.startswith("Seccomp:")][0].split()[1]
            assert mode == "2", "thread %s has seccomp mode %s" % (tid, mode)

        assert vmm.control({"cmd": "pause"})["ok"]
        assert vmm.control({"cmd": "info"})["state"] == "paused"
        assert vmm.control({"cmd": "resume"})["ok"]
        assert vmm.control({"cmd": "info"})["state"] == "running"

        st = vmm.control({"cmd": "stats"})
        assert st["ok"], st
        ex = st["vmm_exits"]
        assert ex["io"]["total"] > 0 and ex["hypercall"]["total"] == 1, ex
        assert len(ex["io"]["vcpu"]) == 2 and ex["io"]["vcpu"][1] == 0, "AP 1 never ran"
        assert len(st["kvm_vcpu"]) == 2 and st["kvm_vcpu"][0]["exits"]["value"] > 0
        assert st["kvm_vcpu"][0]["exits"]["type"] == "cumulative"
        assert len(st["kvm_vm"]) > 0
        names = {p["name"] for p in st["perfc"]}
        assert "vmexits" in names, names
        vmexits = [p for p in st["perfc"] if p["name"] == "vmexits"][0]
        assert vmexits["total"] == sum(vmexits["cpu"]) and len(vmexits["cpu"]) == 2

        for bad in ("not json", '{"cmd": 3}', '{"cmd": "launch"}', "[1,2]"):
            rep = vmm.control_raw(bad)
            assert rep["ok"] is False and rep["error"], (bad, rep)

        assert vmm.control({"cmd": "reboot"})["ok"]
        vmm.wait_for(lambda l: l == "idle boot 1", 20, "the boot after a reboot")
        assert vmm.control({"cmd": "info"})["boot_count"] == 1

        # the payload ignores the power button: the stop must turn hard after 500 ms
        assert vmm.control({"cmd": "stop"})["ok"]
        rc = vmm.wait_exit(15)
        assert rc == 0, rc
        vmm.wait_for(lambda l: "graceful stop timed out" in l, 1, "the hard-stop log line")
        assert not os.path.exists(sock), "control socket left behind"
    finally:
        vmm.kill()

    # SIGTERM with --stop-timeout 0: immediate clean stop
    vmm = vmmtest.Vmm([mvvmm, "--payload", guest, "--stop-timeout", "0"])
    try:
        vmm.wait_for(lambda l: l == "idle boot 0", 20, "the guest's boot")
        vmm.proc.send_signal(signal.SIGTERM)
        assert vmm.wait_exit(10) == 0
    finally:
        vmm.kill()
    print("PASS control")


if __name__ == "__main__":
    main()
