"""Helpers for mvvmm integration tests: run mvvmm, wait for console lines, talk to its control
socket. Used by test_linux_boot.py and test_control.py (run with /usr/bin/python3)."""
import json
import os
import select
import socket
import subprocess
import sys
import time

SKIP = 77


def skip(why):
    print("skip: " + why)
    sys.exit(SKIP)


def require_kvm():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        skip("/dev/kvm is missing or not accessible")


def build_dir():
    d = os.environ.get("MV_BUILD_DIR")
    if not d:
        skip("MV_BUILD_DIR not set (run through ctest)")
    return d


class Vmm:
    """mvvmm as a child process with its console (stdout+stderr) read line by line."""

    def __init__(self, args, sock=None):
        self.sock_path = sock
        self.lines = []
        self.buf = b""
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        os.set_blocking(self.proc.stdout.fileno(), False)

    def _pump(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return False
        chunk = self.proc.stdout.read()
        if not chunk:
            return False
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            text = line.decode(errors="replace").rstrip("\r")
            print(text, flush=True)
            self.lines.append(text)
        return True

    def wait_for(self, pred, timeout, what):
        """Returns the first line satisfying pred, reading output for up to timeout seconds."""
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for line in self.lines[seen:]:
                if pred(line):
                    return line
            seen = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %ds waiting for %s" % (timeout, what))
            if not self._pump(min(left, 0.5)) and self.proc.poll() is not None:
                self._pump(0)
                if not any(pred(l) for l in self.lines[seen:]):
                    raise AssertionError("mvvmm exited (%s) before %s" % (self.proc.returncode,
                                                                         what))

    def control(self, request, timeout=10):
        return self.control_raw(json.dumps(request), timeout)

    def control_raw(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.sock_path):
            if time.monotonic() > deadline:
                raise AssertionError("control socket %s never appeared" % self.sock_path)
            time.sleep(0.02)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock_path)
        s.sendall((text + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        return json.loads(data)

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._pump(0.2)
        if self.proc.poll() is None:
            self.kill()
            raise AssertionError("mvvmm did not exit within %ds" % timeout)
        while self._pump(0):
            pass
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.sock_path and os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
