# Record encode/decode on either runtime, for parity tests. One JSON object per input line:
#   {"type": int, "seq": int, "boot": int, "uptime_ms": int, "wall_s": int|null,
#    "fields": [...]}
# Output per line: "<hex> <canonical JSON of decode()>", or "error <message>".
# --corrupt: per line "corrupt tried=<n> accepted=<m>": every byte inverted, every bit
# flipped, every truncation, every other length byte (CRC made right again) and a
# trailing byte must each be rejected by decode(). accepted must be 0.
import binascii
import json
import struct
import sys

from core import canonjson, record


def encode_line(obj):
    buf = bytearray(record.MAX_BYTES)
    n = record.encode(
        buf,
        0,
        obj["type"],
        obj["seq"],
        obj["boot"],
        obj["uptime_ms"],
        obj["wall_s"],
        tuple(obj["fields"]),
    )
    return bytes(buf[:n])


def rejected(data):
    try:
        record.decode(data)
    except record.RecordError:
        return True
    return False


def corruptions(good):
    n = len(good)
    tried = 0
    accepted = 0
    for i in range(n):
        for mask in (0xFF, 1, 2, 4, 8, 16, 32, 64, 128):
            bad = bytearray(good)
            bad[i] ^= mask
            tried += 1
            accepted += not rejected(bad)
    for cut in range(n):
        tried += 1
        accepted += not rejected(good[:cut])
    tried += 1
    accepted += not rejected(good + b"\x00")
    for length in range(256):
        if length == n:
            continue
        # A consistent-looking record of the wrong length: the CRC is made to match.
        size = max(length, 7)
        bad = bytearray(size)
        bad[: min(n, size)] = good[: min(n, size)]
        bad[2] = length
        if length >= 7:
            crc = binascii.crc32(bytes(bad[: length - 4]))
            struct.pack_into("<I", bad, length - 4, crc)
        tried += 1
        accepted += not rejected(bytes(bad))
    return tried, accepted


def main(argv, stdin, stdout, stderr):
    corrupt = "--corrupt" in argv
    for line in stdin:
        if not line.strip():
            continue
        try:
            data = encode_line(json.loads(line))
        except record.RecordError as err:
            stdout.write("error %s\n" % err)
            continue
        if corrupt:
            tried, accepted = corruptions(data)
            stdout.write("corrupt tried=%d accepted=%d\n" % (tried, accepted))
        else:
            decoded = record.decode(data)
            stdout.write("%s %s\n" % (binascii.hexlify(data).decode(), canonjson.dumps(decoded)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], sys.stdin, sys.stdout, sys.stderr))
