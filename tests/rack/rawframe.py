#!/usr/bin/python3
"""Raw Ethernet frames for rack tests (AF_PACKET), run inside a host namespace.

  rawframe.py send IFACE DST_MAC ETHERTYPE COUNT [--size N] [--gap-us N]
      sends COUNT frames whose payload is b"MVRK" + 32-bit sequence number, padded to N bytes
  rawframe.py recv IFACE ETHERTYPE SECONDS [--idle S]
      prints "ready" (stderr) once bound, collects "MVRK" frames for SECONDS (or until S seconds
      pass without a frame after the first one, or until SIGTERM/SIGINT), then prints one JSON
      line on stdout:
      {"count", "unique", "dups", "reordered", "sources": [MAC...], "first", "last"}
ETHERTYPE is hex (0x88b6) or decimal. DST_MAC may be ff:ff:ff:ff:ff:ff."""
import argparse
import json
import signal
import socket
import struct
import sys
import time

MAGIC = b"MVRK"


def mac_bytes(s):
    parts = s.split(":")
    if len(parts) != 6:
        raise SystemExit("bad MAC %r" % s)
    return bytes(int(p, 16) for p in parts)


def mac_str(b):
    return ":".join("%02x" % x for x in b)


def send(a):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    src = s.getsockname()[4]
    hdr = mac_bytes(a.dst) + src + struct.pack(">H", a.ethertype)
    for seq in range(a.count):
        payload = MAGIC + struct.pack(">I", seq)
        payload += bytes(max(0, a.size - len(payload)))
        s.send(hdr + payload)
        if a.gap_us:
            time.sleep(a.gap_us / 1e6)
    s.close()


def stop(signum, frame):
    raise KeyboardInterrupt


def recv(a):
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(a.ethertype))
    # Bursts of small frames overflow the default receive buffer (~270 frames) long before the
    # switch drops anything: make it big, so losses we count are the ones the rack injected.
    try:
        s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 16 << 20)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind((a.iface, a.ethertype))
    print("ready", file=sys.stderr, flush=True)
    deadline = time.monotonic() + a.seconds
    seen, sources = {}, set()
    count = reordered = 0
    highest = -1
    last_rx = None
    while True:
        now = time.monotonic()
        limit = deadline
        if last_rx is not None and a.idle:
            limit = min(limit, last_rx + a.idle)
        if now >= limit:
            break
        s.settimeout(limit - now)
        try:
            frame, addr = s.recvfrom(65535)
        except (socket.timeout, KeyboardInterrupt):
            break
        if addr[2] == socket.PACKET_OUTGOING or frame[14:18] != MAGIC:
            continue
        seq = struct.unpack(">I", frame[18:22])[0]
        count += 1
        seen[seq] = seen.get(seq, 0) + 1
        sources.add(mac_str(frame[6:12]))
        if seq < highest:
            reordered += 1
        highest = max(highest, seq)
        last_rx = time.monotonic()
    print(json.dumps({"count": count, "unique": len(seen), "dups": count - len(seen),
                      "reordered": reordered, "sources": sorted(sources),
                      "first": min(seen) if seen else None, "last": max(seen) if seen else None}))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    ps = sub.add_parser("send")
    ps.add_argument("iface")
    ps.add_argument("dst")
    ps.add_argument("ethertype", type=lambda x: int(x, 0))
    ps.add_argument("count", type=int)
    ps.add_argument("--size", type=int, default=46)
    ps.add_argument("--gap-us", type=int, default=0)
    pr = sub.add_parser("recv")
    pr.add_argument("iface")
    pr.add_argument("ethertype", type=lambda x: int(x, 0))
    pr.add_argument("seconds", type=float)
    pr.add_argument("--idle", type=float, default=0)
    a = p.parse_args()
    send(a) if a.cmd == "send" else recv(a)


if __name__ == "__main__":
    main()
