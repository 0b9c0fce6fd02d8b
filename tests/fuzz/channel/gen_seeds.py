#!/usr/bin/python3
"""Writes the seed corpora: valid control/stats frames (signed with the fuzz key) and frame
sequences for fuzz_channel_rx. Run from this folder: /usr/bin/python3 gen_seeds.py"""
import os, struct, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                '../../integration/ethproto'))
import mvtag  # noqa: E402

KEY = bytes(range(32))
OUR = bytes([2, 0, 0, 0, 0, 1])
PEER = bytes([2, 0, 0, 0, 0, 5])

def frame(typ, flags=0, payload=b'', ethertype=0x88B5, dst=OUR, node=5, inc=7, dinc=1, counter=1,
          seq=0, ack=1, window=64, op=0, msg_id=0, ref=0, msg_len=0, frag_off=0, status=0):
    hdr = struct.pack('>BBHBBHQQQQIIHHIIIIi', 1, typ, flags, 1, 0, len(payload), node, inc, dinc,
                      counter, seq, ack, window, op, msg_id, ref, msg_len, frag_off, status)
    body = dst + PEER + struct.pack('>H', ethertype) + hdr + payload
    return body + mvtag.tag(KEY, body)

def hello():
    tlv = b''
    for t, v in [(1, PEER), (2, struct.pack('>I', 1)), (3, b'peer-5'), (4, b'0.1.0'), (5, b'b1'),
                 (6, b'c1'), (7, b'r1'), (8, struct.pack('>I', 500))]:
        tlv += bytes([t, len(v)]) + v
    return frame(3, payload=tlv, dst=b'\xff' * 6, dinc=0)

seeds_codec = {
    'data_request': frame(1, 1, b'hello', seq=1, op=9, msg_id=1, msg_len=5),
    'data_fragment': frame(1, 0, b'x' * 1000, seq=2, op=3, msg_id=2, msg_len=3000, frag_off=1000),
    'data_response': frame(1, 2, b'ok', seq=3, op=9, msg_id=3, ref=1, msg_len=2, status=-5),
    'ack_sack': frame(2, 0, struct.pack('>IIII', 5, 7, 9, 12), ack=3),
    'keepalive': frame(4, 8),
    'hello': hello(),
    'stats_dgram': frame(5, 0, b'\x01\x02stats', ethertype=0x88B6, dst=b'\xff' * 6, dinc=0, op=1,
                         msg_id=1),
}
for name, data in seeds_codec.items():
    open(f'corpus/fuzz_ctrl_frame/{name}', 'wb').write(data)

def seq_input(frames, step=1):
    out = b'\x01'
    for f in frames:
        out += struct.pack('>HB', len(f), step) + f
    return out

# A request split in two fragments delivered out of order, a duplicate, an ack, a keepalive.
req = [frame(1, 1, b'a' * 1412, seq=1, op=9, msg_id=11, msg_len=2000, counter=1),
       frame(1, 1, b'b' * 588, seq=2, op=9, msg_id=11, msg_len=2000, frag_off=1412, counter=2)]
open('corpus/fuzz_channel_rx/request_2frag', 'wb').write(seq_input([hello(), req[1], req[0]]))
open('corpus/fuzz_channel_rx/dups', 'wb').write(
    seq_input([req[0], req[0], frame(4, 8, counter=3), req[1], frame(2, 0, counter=4)]))
open('corpus/fuzz_channel_rx/restart', 'wb').write(
    seq_input([req[0], frame(1, 0, b'z', seq=1, msg_id=1, msg_len=1, inc=8, counter=1)], 50))
open('corpus/fuzz_channel_rx/raw_forged', 'wb').write(b'\x00' + req[0][:-1] + b'\x00')
open('corpus/fuzz_channel_rx/raw_hello_signed', 'wb').write(b'\x00' + hello())
