"""The control-frame tag of docs/protocol.md §4.1 in plain Python (no crypto package needed):
the Poly1305 tag of XChaCha20-Poly1305 with an empty plaintext and the frame as associated
data. Used by attack.py and tests/fuzz/channel/gen_seeds.py."""
import struct

MASK32 = 0xffffffff


def _rotl(v, n):
    return ((v << n) | (v >> (32 - n))) & MASK32


def _rounds(s):
    def qr(a, b, c, d):
        s[a] = (s[a] + s[b]) & MASK32; s[d] = _rotl(s[d] ^ s[a], 16)
        s[c] = (s[c] + s[d]) & MASK32; s[b] = _rotl(s[b] ^ s[c], 12)
        s[a] = (s[a] + s[b]) & MASK32; s[d] = _rotl(s[d] ^ s[a], 8)
        s[c] = (s[c] + s[d]) & MASK32; s[b] = _rotl(s[b] ^ s[c], 7)
    for _ in range(10):
        qr(0, 4, 8, 12); qr(1, 5, 9, 13); qr(2, 6, 10, 14); qr(3, 7, 11, 15)
        qr(0, 5, 10, 15); qr(1, 6, 11, 12); qr(2, 7, 8, 13); qr(3, 4, 9, 14)


_SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]


def hchacha20(key, nonce16):
    s = _SIGMA + list(struct.unpack('<8I', key)) + list(struct.unpack('<4I', nonce16))
    _rounds(s)
    return struct.pack('<8I', *(s[0:4] + s[12:16]))


def chacha20_block(key, counter, nonce12):
    init = _SIGMA + list(struct.unpack('<8I', key)) + [counter] + list(struct.unpack('<3I', nonce12))
    s = list(init)
    _rounds(s)
    return struct.pack('<16I', *[(a + b) & MASK32 for a, b in zip(s, init)])


def poly1305(key32, msg):
    r = int.from_bytes(key32[:16], 'little') & 0x0ffffffc0ffffffc0ffffffc0fffffff
    s = int.from_bytes(key32[16:], 'little')
    p, acc = (1 << 130) - 5, 0
    for i in range(0, len(msg), 16):
        block = msg[i:i + 16] + b'\x01'
        acc = (acc + int.from_bytes(block, 'little')) * r % p
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, 'little')


def tag(key, frame_body):
    """16-byte tag for frame_body (the frame without its tag) under the 32-byte cluster key."""
    h = frame_body[14:]
    if h[32] or h[33]:
        raise ValueError('counter >= 2^48 is never sealed')
    nonce = h[8:24] + frame_body[12:14] + h[34:40]
    sub = hchacha20(key, nonce[:16])
    otk = chacha20_block(sub, 0, b'\0' * 4 + nonce[16:])[:32]
    pad = b'\0' * (-len(frame_body) % 16)
    return poly1305(otk, frame_body + pad + struct.pack('<QQ', len(frame_body), 0))
