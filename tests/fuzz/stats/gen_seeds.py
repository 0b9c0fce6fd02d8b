#!/usr/bin/python3
"""Writes the seed corpus of fuzz_stats_decode from docs/stats.md alone (no C code involved),
so a seed the decoder rejects means the document and the decoder disagree.
Run: /usr/bin/python3 gen_seeds.py [outdir]"""
import os
import struct
import sys

UINT, STR = 1, 2
HOST, PCPU, NUMA, POOL, GUEST, VCPU, GMEM, VIF, VBD = range(1, 10)


def uint(fid, v):
    n = max(1, (v.bit_length() + 7) // 8)
    return struct.pack(">BBB", fid, UINT, n) + v.to_bytes(n, "big")


def text(fid, s):
    b = s.encode("ascii")
    return struct.pack(">BBB", fid, STR, len(b)) + b


def record(key, *fields):
    body = struct.pack(">B", len(key)) + key + b"".join(fields)
    return struct.pack(">H", len(body)) + body


def group(gtype, *records):
    body = b"".join(records)
    return struct.pack(">BBHH", gtype, 0, len(records), len(body)) + body


def report(groups, node=0x026D76010001, report_id=1, idx=0, cnt=1, ts=1700000000000000000,
           interval=10000, ext=b""):
    hdr = struct.pack(">BBHQIHHQIH", 1, 0, 34 + len(ext), node, report_id, idx, cnt, ts, interval,
                      len(groups))
    return hdr + ext + b"".join(groups)


U1 = bytes(range(0xA0, 0xB0))
U2 = bytes(range(0x10, 0x20))
TS = 1700000000000000000


def full_small():
    return report([
        group(HOST, record(b"", uint(1, TS), uint(2, 2), uint(3, 1), uint(4, 1), uint(5, 1),
                           uint(6, 8 << 30), uint(7, 3 << 30), uint(8, 1250))),
        group(PCPU, record(struct.pack(">I", 0), uint(1, TS), uint(2, 123456789)),
              record(struct.pack(">I", 1), uint(1, TS), uint(2, 987654321))),
        group(NUMA, record(struct.pack(">I", 0), uint(1, 8 << 30), uint(2, 3 << 30))),
        group(POOL, record(struct.pack(">I", 0), uint(1, 500), uint(2, 2), uint(3, 1))),
        group(GUEST, record(U1)),
        group(VCPU, record(U1 + struct.pack(">I", 0), uint(1, TS), uint(2, 4250), uint(3, 10**9))),
        group(GMEM, record(U1, uint(1, TS), uint(2, 256 << 20), uint(3, 512 << 20))),
        group(VIF, record(U1 + b"vif1.0", uint(1, TS), *[uint(i, i * 1000) for i in range(2, 10)])),
        group(VBD, record(U1 + b"vda", uint(1, TS), text(2, "aoe"), text(3, "/dev/vda"),
                          *[uint(i, i * 64) for i in range(4, 9)])),
    ])


def empty_groups():
    return report([group(g) for g in range(HOST, VBD + 1)], report_id=2)


def forward_compat():
    return report([
        group(200, record(b"junk", uint(1, 5))),
        group(PCPU, record(struct.pack(">I", 7), uint(31, 99), struct.pack(">BBB", 17, 9, 2) + b"xy",
                           uint(2, 42))),
        group(VIF),
    ], report_id=3, ext=b"\xee" * 6)


def middle_chunk():
    vcpus = [record(U2 + struct.pack(">I", v), uint(1, TS), uint(2, v * 100), uint(3, v << 32))
             for v in range(8)]
    vifs = [record(U2 + ("vif2.%d" % k).encode(), uint(1, TS), uint(2, 1 << 40), uint(9, 3))
            for k in range(3)]
    return report([group(VCPU, *vcpus), group(VIF, *vifs)], report_id=4, idx=1, cnt=3)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_stats_decode")
    os.makedirs(out, exist_ok=True)
    for name, fn in [("full_small", full_small), ("empty_groups", empty_groups),
                     ("forward_compat", forward_compat), ("middle_chunk", middle_chunk)]:
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(fn())


if __name__ == "__main__":
    main()
