#!/usr/bin/python3
"""Delay line for rack_reorder: runs in the switch namespace on one end of a veth pair whose
other end is a bridge port (learning off). nftables diverts a random share of the frames there;
this holds each one for DELAY_MS (plus up to JITTER_MS) and sends it back into the bridge, so it
arrives after frames sent later: reordering, which tc netem would do, but this kernel lacks it.

  delayline.py IFACE DELAY_MS [JITTER_MS]"""
import heapq
import random
import socket
import sys
import time

ETH_P_ALL = 3


def main():
    iface, delay = sys.argv[1], float(sys.argv[2]) / 1000
    jitter = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE
    s.bind((iface, ETH_P_ALL))
    print("ready", flush=True)
    held, n = [], 0
    while True:
        timeout = max(0.0, held[0][0] - time.monotonic()) if held else None
        s.settimeout(timeout)
        try:
            frame, addr = s.recvfrom(65535)
            if addr[2] != socket.PACKET_OUTGOING:
                n += 1
                due = time.monotonic() + delay + random.random() * jitter
                heapq.heappush(held, (due, n, frame))
        except (socket.timeout, BlockingIOError):
            pass
        now = time.monotonic()
        while held and held[0][0] <= now:
            s.send(heapq.heappop(held)[2])


if __name__ == "__main__":
    main()
