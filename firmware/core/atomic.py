# Small files replaced whole, all or nothing: the record store's state, and settings or a
# calibration the clinic must never find half written. docs/storage.md has the format.
#   write(path, payload): path.tmp gets magic + length + payload + CRC32, then is renamed
#     over path (atomic on LittleFS and POSIX). Raises OSError; the old file stays then.
#   read(path, buf): the payload last written, as a memoryview into buf (which needs
#     OVERHEAD_BYTES more than the payload), or None when neither path nor path.tmp holds a
#     whole, valid one. An I/O error raises OSError: "unreadable" is not "missing", and a
#     caller that took it for missing could rebuild state it still has.
# FAT will not rename over a file: there the old file is removed first, and read() falls
# back to path.tmp when a cut came between the two.
import binascii
import os
import struct

from micropython import const

OVERHEAD_BYTES = const(10)
TMP_SUFFIX = ".tmp"
_FRAME = "<IH"  # magic, payload length; then the payload, then CRC32 of all before it
_FRAME_BYTES = const(6)
_MAGIC = const(0x31414441)  # "ADA1"
_CRC = "<I"
_ENOENT = const(2)
_EEXIST = const(17)


def write(path, payload):
    """Replaces path with payload (bytes-like), all or nothing. Raises OSError on failure."""
    frame = struct.pack(_FRAME, _MAGIC, len(payload))
    crc = struct.pack(_CRC, binascii.crc32(payload, binascii.crc32(frame)))
    tmp = path + TMP_SUFFIX
    f = open(tmp, "wb")
    try:
        f.write(frame)
        f.write(payload)
        f.write(crc)
    except OSError:
        close_quietly(f)
        raise
    f.close()
    try:
        os.rename(tmp, path)
    except OSError as err:
        if errno_of(err) != _EEXIST:
            raise  # LittleFS and POSIX rename over a file: the old one stays as it was
        os.remove(path)  # FAT: read() finds path.tmp until the rename below is done
        os.rename(tmp, path)


def read(path, buf):
    """The payload last written to path (a memoryview into buf), or None if none is valid."""
    n = _read_valid(path, buf)
    if n < 0:
        n = _read_valid(path + TMP_SUFFIX, buf)
    if n < 0:
        return None
    return memoryview(buf)[_FRAME_BYTES : _FRAME_BYTES + n]


def _read_valid(path, buf):
    # Payload length of a valid file at path, -1 if it is missing or not valid.
    try:
        f = open(path, "rb")
    except OSError as err:
        if errno_of(err) == _ENOENT:
            return -1
        raise
    try:
        got = f.readinto(buf)
    except OSError:
        close_quietly(f)
        raise
    f.close()
    if not got or got < OVERHEAD_BYTES:
        return -1
    magic, n = struct.unpack_from(_FRAME, buf, 0)
    if magic != _MAGIC or n != got - OVERHEAD_BYTES:
        return -1
    end = _FRAME_BYTES + n
    if struct.unpack_from(_CRC, buf, end)[0] != binascii.crc32(memoryview(buf)[:end]):
        return -1
    return n


def errno_of(err):
    return err.args[0] if err.args and type(err.args[0]) is int else 0


def close_quietly(f):
    # After a failed write the close fails too; the write's error is the one to report.
    try:
        f.close()
    except OSError:
        pass
