# The USB serial pull's wire format (docs/protocol.md, "Over USB"): what firmware/usb.py
# prints on the unit's raw REPL and host_sync/usb.py reads, one module for both sides.
#
# The raw REPL carries a command's output as text ended by a 0x04 byte, so records travel
# as base64, one line per Store.read_into() buffer:
#   R <from_seq> <next_seq> <base64 of whole records>   records with seq >= from_seq, in seq
#                                                       order; next_seq: where the next line
#                                                       starts (the last record's seq + 1),
#                                                       0 when none is left
#   E <code> <records>                                  the end of a report: an RACP response
#                                                       code (core.protocol) and how many
#                                                       records the unit sent
# Every record keeps its own CRC (core.record.check); the host also checks that each line
# starts where the one before said (a lost line is an error, never a silent gap) and that
# the end line counts what arrived. Lines may end in "\r\n" (a board's console) or "\n".
import binascii

from micropython import const

from core import record

CHUNK_BYTES = const(1024)  # records per line: what one read_into() buffer holds
RECORDS = "R"
END = "E"


def records_line(buf, used, from_seq, next_seq):
    """The line for buf[:used], as read_into(buf, from_seq) packed it and returned
    next_seq. Allocates (the unit's app is stopped while it sends)."""
    data = binascii.b2a_base64(memoryview(buf)[:used]).decode().strip()
    return "%s %d %d %s\n" % (RECORDS, from_seq, next_seq, data)


def end_line(code, records):
    return "%s %d %d\n" % (END, code, records)


def parse_line(line):
    """(RECORDS, from_seq, next_seq, bytes) or (END, code, records, None) for one line
    (without its end); ValueError for anything else."""
    parts = line.split(" ")
    try:
        if parts[0] == RECORDS and len(parts) == 4:
            return RECORDS, int(parts[1]), int(parts[2]), binascii.a2b_base64(parts[3])
        if parts[0] == END and len(parts) == 3:
            return END, int(parts[1]), int(parts[2]), None
    except ValueError:  # not a number, or not base64 (binascii.Error is a ValueError)
        pass
    raise ValueError("not a line of the USB record stream: %r" % line[:40])


def split_records(data, from_seq, next_seq):
    """The whole records of one RECORDS line, each checked (type, length, CRC), with seqs
    rising from from_seq and next_seq the last one's + 1 (or 0); ValueError otherwise."""
    out = []
    off = 0
    last = from_seq - 1
    end = len(data)
    while off < end:
        n = record.check(data, off, end)
        if n <= 0:
            raise ValueError("bytes that are not a record at %d of a line" % off)
        seq = record.seq_of(data, off)
        if seq <= last:
            raise ValueError("record %d out of order (after %d)" % (seq, last))
        out.append(bytes(data[off : off + n]))
        off += n
        last = seq
    if not out or (next_seq and next_seq != last + 1):
        raise ValueError("a line whose next seq %d does not follow its records" % next_seq)
    return out
