# The reading store: an append-only log of core.record records in segment files on the
# mounted filesystem (LittleFS on the board). docs/storage.md has the format, the API and
# the crash-safety argument. In short:
# - append() puts a record in a RAM buffer (allocated once) and returns its seq; flush()
#   writes the buffer with one append + close, and only then is a record stored
#   (stored_seq). LittleFS commits a file on close, so a flush is all or nothing.
# - Sequence numbers are leased: the state file always holds a seq above every one handed
#   out, so a power cut never leads to a seq being used twice.
# - Only whole segments the host has acknowledged are deleted, oldest first, only when
#   space is needed, and never the newest one (it anchors the sequence).
# - The store never formats and never rewrites a record; bad bytes are skipped by CRC and
#   reported as event records.
import binascii
import os
import struct

from micropython import const

from core import record

FULL_MESSAGE = "storage full - sync"
_STATE = "/state"
_STATE_TMP = "/state.tmp"
_STATE_MAGIC = const(0x31534441)  # "ADS1"
_STATE_FMT = "<IIIII"  # magic, seq lease, acked seq, boot counter, CRC32 of the 16 before
_STATE_BYTES = const(20)
_LEASE = const(64)  # seqs handed out per state write
_SEG = const(0)  # segment list entries: [first seq (its name), bytes, records, last seq]
_BYTES = const(1)
_COUNT = const(2)
_LAST = const(3)
_REPORTED_MAX = const(16)
_MAX_SEQ = const(0xFFFFFFFF)


class StoreError(Exception):
    # The message is meant for the screen: short, and says what to do.
    pass


class StoreFull(StoreError):
    def __init__(self):
        super().__init__(FULL_MESSAGE)


class Store:
    """Records on flash. Every method raises StoreError (or StoreFull) for storage trouble.

    root: a directory on the mounted filesystem, created if missing (never formatted).
    buf_bytes: the RAM batch; a full batch flushes itself. segment_bytes: size cap of one
    segment file (None: what two filesystem blocks hold, 8184 B on 4 KB blocks; LittleFS
    keeps a pointer in every block after the first, so 8192 B would take a third block).
    session_bytes: room a new session needs beyond the reserve.
    reserve_bytes: free space kept for the filesystem and a running session
    (None: segment_bytes + 4 filesystem blocks).
    """

    def __init__(
        self, root, buf_bytes=1024, segment_bytes=None, session_bytes=8192, reserve_bytes=None
    ):
        if buf_bytes < record.MAX_BYTES or (segment_bytes or buf_bytes) < buf_bytes:
            raise ValueError("store: need record.MAX_BYTES <= buf_bytes <= segment_bytes")
        self._root = root.rstrip("/")
        self._buf = bytearray(buf_bytes)
        self._mv = memoryview(self._buf)
        self._rbuf = bytearray(2 * record.MAX_BYTES)  # scans inside one call
        self._ibuf = bytearray(2 * record.MAX_BYTES)  # the records() iterator
        self._sbuf = bytearray(_STATE_BYTES)
        self._segment_bytes = segment_bytes
        self._session_bytes = session_bytes
        self._reserve = reserve_bytes
        self._fill = 0
        self._buffered = 0  # records in the buffer
        # Seqs of the first and last buffered records: next_seq may jump past them (a new
        # lease at a remount), so the batch keeps its own.
        self._first_buffered = 0
        self._last_buffered = 0
        self._segs = []  # oldest first; see _SEG.._LAST
        self._active = False  # the newest segment may take appends
        self._reader = 0
        self._reported = []
        self._uptime_ms = 0
        self._wall_s = None
        self.next_seq = 1
        self.stored_seq = 0  # highest seq durably on flash
        self.acked_seq = 0  # the host has durably stored everything <= this
        self.boot = 0
        self._lease = 0
        self._unacked = 0
        self._open = False

    # --- mount -------------------------------------------------------------------------

    def open(self, uptime_ms, wall_s=None, cause=0):
        """Mounts the log: recover, count a boot, report problems. Returns their number.

        Appends a boot event (detail = cause) and one store event per problem, and
        flushes them (unless the disk is full: then they wait in the buffer). After a
        StoreError, remount the filesystem and call open() again on the same Store: the
        records still in its RAM batch keep their seqs and are written then.
        """
        self._uptime_ms = uptime_ms
        self._wall_s = wall_s
        try:
            problems = self._mount()
        except OSError as err:
            raise _failure(err) from None
        self._open = True
        self.append(record.TYPE_EVENT, uptime_ms, wall_s, (record.EV_BOOT, cause, 0, 0))
        for detail, where, nbytes in problems:
            self._report(detail, where, nbytes)
        try:
            self.flush()
        except StoreFull:
            pass  # the UI shows the full store when a session is refused
        return len(problems)

    def _mount(self):
        root = self._root
        try:
            names = os.listdir(root)
        except OSError:
            os.mkdir(root)  # a missing directory is created; a bad filesystem raises here
            names = []
        firsts = []
        for name in names:
            if len(name) == 9 and name[0] == "L":
                try:
                    firsts.append(int(name[1:], 16))
                except ValueError:
                    pass
        firsts.sort()
        state = self._read_state(_STATE)
        spare = self._read_state(_STATE_TMP)
        problems = []
        self._reported = []
        self._unacked = 0
        if state is None:
            state = spare
            if firsts:
                problems.append((record.ST_STATE, 0, 0))
        lease, acked, boot = state if state is not None else (0, 0, 0)
        if spare is not None and spare[0] > lease:
            lease = spare[0]
        self._segs = []
        last = 0
        last_boot = 0
        stat = [0, 0, 0, 0]
        for first in firsts:
            seg = [first, 0, 0, 0]
            stat[0] = stat[1] = stat[2] = stat[3] = 0
            for seq, off, _n in self._scan(first, self._rbuf, stat):
                if seq <= last:
                    stat[3] += 1
                    continue
                last = seq
                last_boot = record.boot_of(self._rbuf, off)
                seg[_COUNT] += 1
                seg[_LAST] = seq
                if seq > acked:
                    self._unacked += 1
            seg[_BYTES] = stat[0] + stat[1] + stat[2]
            if seg[_BYTES] == 0:
                os.remove(self._path(first))  # created, then power failed before its data
                problems.append((record.ST_EMPTY, first, 0))
                continue
            self._segs.append(seg)
            if stat[0]:
                problems.append((record.ST_CORRUPT, first, stat[0]))
            if stat[1]:
                problems.append((record.ST_TORN, first, stat[1]))
            if stat[3]:
                problems.append((record.ST_ORDER, first, stat[3]))
            self._active = not (stat[0] or stat[1] or stat[3])  # never append after bad bytes
        if state is None:
            boot = last_boot  # unknown: at least the last boot seen in the log
        self.stored_seq = last
        self.acked_seq = min(acked, last)
        self.next_seq = max(lease, last + 1, 1)
        self.boot = boot + 1
        self._lease = self.next_seq + _LEASE
        self._write_state()
        if self._segment_bytes is None or self._reserve is None:
            block = os.statvfs(root)[1]
            if self._segment_bytes is None:
                self._segment_bytes = max(2 * block - 8, len(self._buf))
            if self._reserve is None:
                self._reserve = self._segment_bytes + 4 * block
        return problems

    def _path(self, first):
        return "%s/L%08X" % (self._root, first)

    # --- appending ---------------------------------------------------------------------

    def append(self, rtype, uptime_ms, wall_s, fields):
        """Adds one record to the RAM batch; returns its seq. Not stored until flush().

        wall_s: Unix seconds, or None while the clock is not valid. A session start is
        refused with StoreFull unless a whole session fits (after reclaiming space).
        Raises record.RecordError for a bad field: nothing is added then.
        """
        if not self._open:
            raise StoreError("storage not open")
        n = record.size(rtype, wall_s, fields)
        if rtype == record.TYPE_SESSION:
            self._require(self._session_need())
        if self._fill + n > len(self._buf):
            self.flush()
        seq = self.next_seq
        if seq >= self._lease:
            # The lease on flash must cover every seq handed out: raise it there first.
            old = self._lease
            self._lease = seq + _LEASE
            try:
                self._write_state()
            except OSError as err:
                self._lease = old
                raise _failure(err) from None
        record.encode(
            self._mv, self._fill, rtype, seq, self.boot & 0xFFFF, uptime_ms, wall_s, fields
        )
        self.next_seq = seq + 1
        if not self._buffered:
            self._first_buffered = seq
        self._last_buffered = seq
        self._fill += n
        self._buffered += 1
        self._uptime_ms = uptime_ms
        self._wall_s = wall_s
        return seq

    def flush(self):
        """Writes the batch; returns stored_seq, the highest seq durably stored.

        On an error the batch stays in RAM (not stored) and StoreError says why; calling
        flush() again retries it.
        """
        if not self._fill:
            return self.stored_seq
        segs = self._segs
        fresh = not self._active or not segs or segs[-1][_BYTES] + self._fill > self._segment_bytes
        first = self._first_buffered
        if fresh:
            self._require(self._fill)
            seg = [first, 0, 0, 0]
        else:
            seg = segs[-1]
        try:
            f = open(self._path(seg[_SEG]), "ab")
            try:
                f.write(self._mv[: self._fill])
            finally:
                f.close()
        except OSError as err:
            self._active = False  # retry into a fresh segment, never after a partial write
            self._report(record.ST_IO, first, _errno(err))
            raise _failure(err) from None
        if fresh:
            segs.append(seg)
            self._active = True
        last = self._last_buffered
        seg[_BYTES] += self._fill
        seg[_COUNT] += self._buffered
        seg[_LAST] = last
        self._unacked += self._buffered
        self.stored_seq = last
        self._fill = 0
        self._buffered = 0
        return last

    def _report(self, detail, where, nbytes):
        # One store event per problem place per boot, into the batch (flushed with it).
        if detail != record.ST_IO:
            key = (where & 0xFFFFFFF) << 3 | detail
            if key in self._reported:
                return
            if len(self._reported) < _REPORTED_MAX:
                self._reported.append(key)
        if self._fill + record.EVENT_MAX_BYTES > len(self._buf):
            return  # no room without a flush: the problem is reported at the next mount
        self.append(
            record.TYPE_EVENT,
            self._uptime_ms,
            self._wall_s,
            (record.EV_STORE, detail, where & _MAX_SEQ, nbytes & _MAX_SEQ),
        )

    # --- space -------------------------------------------------------------------------

    def _free(self):
        st = os.statvfs(self._root)
        return st[1] * st[4]

    def _session_need(self):
        # Room a session start asks for: the same answer for room_for_session() and append.
        return self._session_bytes + self._fill + record.MAX_BYTES

    def _require(self, nbytes):
        # Free space for nbytes beyond the reserve, reclaiming acknowledged segments.
        try:
            if self._free() >= self._reserve + nbytes:
                return
            if self._reclaim(self._reserve + nbytes) >= self._reserve + nbytes:
                return
        except OSError as err:
            raise _failure(err) from None
        raise StoreFull()

    def _reclaim(self, target):
        free = self._free()
        segs = self._segs
        # Oldest first, whole segments, all acknowledged, never the newest one.
        while free < target and len(segs) > 1 and segs[0][_LAST] <= self.acked_seq:
            seg = segs[0]
            os.remove(self._path(seg[_SEG]))
            segs.pop(0)
            free = self._free()
        return free

    def room_for_session(self):
        """True when a new session start would be accepted (may reclaim space)."""
        try:
            self._require(self._session_need())
        except StoreFull:
            return False
        return True

    # --- sync --------------------------------------------------------------------------

    def ack(self, seq):
        """The host has durably stored every record <= seq. Returns acked_seq.

        Acknowledged records stay on flash until their space is needed.
        """
        if type(seq) is not int or seq < 0:
            raise ValueError("ack: a sequence number")
        if seq > self.stored_seq:
            raise ValueError(
                "ack: %d is beyond the last stored record %d" % (seq, self.stored_seq)
            )
        if seq <= self.acked_seq:
            return self.acked_seq
        newly = self.count(self.acked_seq + 1, seq)
        old = self.acked_seq
        self.acked_seq = seq
        try:
            self._write_state()
        except OSError as err:
            self.acked_seq = old
            raise _failure(err) from None
        self._unacked -= newly
        return seq

    def records(self, from_seq=1, to_seq=_MAX_SEQ):
        """Yields (seq, memoryview of the raw record) for stored records in seq order.

        The view is only valid until the next step. Records failing their CRC are skipped
        and reported. One iterator at a time: starting another ends this one.
        """
        self._reader += 1
        token = self._reader
        buf = self._ibuf
        mv = memoryview(buf)
        last = 0
        stat = [0, 0, 0, 0]
        firsts = [seg[_SEG] for seg in self._segs]
        for i in range(len(firsts)):
            if i + 1 < len(firsts) and firsts[i + 1] <= from_seq:
                continue  # every record in it is below from_seq
            if firsts[i] > to_seq:
                break
            stat[0] = stat[1] = 0
            scan = None
            try:
                scan = self._scan(firsts[i], buf, stat)
                for seq, off, n in scan:
                    if seq <= last or seq < from_seq:
                        continue
                    if seq > to_seq:
                        break
                    last = seq
                    yield seq, mv[off : off + n]
                    if token != self._reader:
                        raise StoreError("storage read interrupted by another read")
            except OSError as err:
                if self._segs and self._segs[0][_SEG] > firsts[i]:
                    continue  # reclaimed while we read: acknowledged records
                raise _failure(err) from None
            finally:
                if scan is not None:
                    scan.close()  # closes the file now, also when the caller stops early
            if stat[0]:
                self._report(record.ST_CORRUPT, firsts[i], stat[0])

    def count(self, from_seq=1, to_seq=_MAX_SEQ):
        """Number of stored records with from_seq <= seq <= to_seq (RACP 0x04)."""
        if from_seq <= 1 and to_seq >= self.stored_seq:
            return self._total(_COUNT)
        n = 0
        last = 0
        stat = [0, 0, 0, 0]
        for i in range(len(self._segs)):
            seg = self._segs[i]
            if seg[_LAST] < from_seq or seg[_SEG] > to_seq:
                continue
            try:
                for seq, _off, _n in self._scan(seg[_SEG], self._rbuf, stat):
                    if from_seq <= seq <= to_seq and seq > last:
                        n += 1
                        last = seq
            except OSError as err:
                raise _failure(err) from None
        return n

    def stats(self):
        """Counts for the status screen and the sync status characteristic."""
        try:
            free = self._free()
        except OSError:
            free = None  # the status screen still shows the counts
        return {
            "records": self._total(_COUNT),
            "bytes": self._total(_BYTES),
            "free_bytes": free,
            "unacked": self._unacked,
            "buffered": self._buffered,
            "segments": len(self._segs),
            "next_seq": self.next_seq,
            "stored_seq": self.stored_seq,
            "acked_seq": self.acked_seq,
            "boot": self.boot,
        }

    def _total(self, field):
        n = 0
        for seg in self._segs:
            n += seg[field]
        return n

    # --- files -------------------------------------------------------------------------

    def _scan(self, first, buf, stat):
        # Valid records of one segment as (seq, offset in buf, length); buf holds each one
        # while it is yielded. stat[0] += bytes skipped between valid records (corrupt),
        # stat[1] += bytes after the last one (torn tail), stat[2] += valid bytes.
        f = open(self._path(first), "rb")
        try:
            mv = memoryview(buf)
            size = len(buf)
            start = 0
            end = 0
            eof = False
            bad = 0
            while True:
                if not eof and end - start < record.MAX_BYTES:
                    if start:
                        mv[0 : end - start] = mv[start:end]
                        end -= start
                        start = 0
                    got = f.readinto(mv[end:size])
                    if got:
                        end += got
                    else:
                        eof = True
                if start >= end:
                    break
                n = record.check(buf, start, end)
                if n > 0:
                    stat[0] += bad
                    stat[2] += n
                    bad = 0
                    yield record.seq_of(buf, start), start, n
                    start += n
                elif n == 0 or eof:
                    bad += 1  # resync byte by byte: a bit flip costs one record, not the rest
                    start += 1
            stat[1] += bad
        finally:
            f.close()

    def _read_state(self, name):
        try:
            f = open(self._root + name, "rb")
        except OSError:
            return None
        try:
            n = f.readinto(self._sbuf)
        except OSError:
            n = 0
        finally:
            f.close()
        if n != _STATE_BYTES:
            return None
        magic, lease, acked, boot, crc = struct.unpack(_STATE_FMT, self._sbuf)
        if magic != _STATE_MAGIC or crc != binascii.crc32(memoryview(self._sbuf)[:16]):
            return None
        return lease, acked, boot

    def _write_state(self):
        # Write-temp + rename: the state file is always the old or the new one, whole.
        sbuf = self._sbuf
        struct.pack_into("<IIII", sbuf, 0, _STATE_MAGIC, self._lease, self.acked_seq, self.boot)
        struct.pack_into("<I", sbuf, 16, binascii.crc32(memoryview(sbuf)[:16]))
        tmp = self._root + _STATE_TMP
        f = open(tmp, "wb")
        try:
            f.write(sbuf)
        finally:
            f.close()
        try:
            os.rename(tmp, self._root + _STATE)
        except OSError:
            os.remove(self._root + _STATE)  # FAT will not rename over a file; mount reads tmp
            os.rename(tmp, self._root + _STATE)


def _errno(err):
    return err.args[0] if err.args and type(err.args[0]) is int else 0


def _failure(err):
    code = _errno(err)
    if code == 28:  # ENOSPC: the filesystem itself ran out of blocks
        return StoreFull()
    return StoreError("storage error %d - restart" % code)
