#!/usr/bin/python3
"""Extracts the ELF vmlinux from a bzImage: the setup header's payload_offset/payload_length
locate the compressed kernel; its magic says which decompressor (gzip, xz, lzma, zstd, lz4,
bzip2) to run. Usage: extract_vmlinux.py BZIMAGE OUT"""
import gzip
import lzma
import shutil
import struct
import subprocess
import sys


def payload(image):
    if len(image) < 0x250 or image[0x202:0x206] != b"HdrS":
        raise SystemExit("not a bzImage (no HdrS)")
    version = struct.unpack_from("<H", image, 0x206)[0]
    if version < 0x208:
        raise SystemExit("boot protocol %x has no payload_offset" % version)
    setup_sects = image[0x1F1] or 4
    start = (setup_sects + 1) * 512
    off, length = struct.unpack_from("<II", image, 0x248)
    if start + off + length > len(image):
        raise SystemExit("payload outside the image")
    return image[start + off:start + off + length]


def run_tool(argv, data):
    # the kernel appends the decompressed size after the stream: tools may warn about it
    p = subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not p.stdout:
        raise SystemExit("%s failed: %s" % (argv[0], p.stderr.decode(errors="replace")))
    return p.stdout


def decompress(data):
    if data[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=__import__("io").BytesIO(data)).read()
    if data[:6] == b"\xfd7zXZ\x00":
        return lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data)
    if data[:3] == b"\x5d\x00\x00":
        return lzma.LZMADecompressor(lzma.FORMAT_ALONE).decompress(data)
    if data[:4] == b"\x28\xb5\x2f\xfd":
        return run_tool(["zstd", "-dc"], data)
    if data[:4] in (b"\x02\x21\x4c\x18", b"\x04\x22\x4d\x18"):
        return run_tool(["lz4", "-dc"], data)
    if data[:3] == b"BZh":
        import bz2
        return bz2.BZ2Decompressor().decompress(data)
    raise SystemExit("unknown compression, magic %s" % data[:6].hex())


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], "rb") as f:
        image = f.read()
    kernel = decompress(payload(image))
    if kernel[:4] != b"\x7fELF":
        raise SystemExit("decompressed payload is not an ELF")
    tmp = sys.argv[2] + ".tmp"
    with open(tmp, "wb") as f:
        f.write(kernel)
    shutil.move(tmp, sys.argv[2])


if __name__ == "__main__":
    main()
