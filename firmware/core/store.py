# The reading store: an append-only log of core.record records on the mounted filesystem
# (LittleFS on the board). docs/storage.md has the format, the API and the crash-safety
# argument. In short:
# - append() puts a record in a RAM batch (allocated once) and returns its seq; flush()
#   makes the batch durable, and only then is a record stored (stored_seq).
# - Two tiers, because LittleFS copies a file's partial last block on every commit (about
#   one erase per flush into a growing file) while a small file lives inside its
#   directory's metadata log (a commit there costs a fraction of an erase):
#   * the journal: a ring of small slot files (J<d>/<n>). A flush rewrites the next free
#     slot with the batch (several slots, split at record boundaries, for a larger one):
#     one metadata commit per slot.
#   * segments (L<first seq>): when the ring is used up, or a record is too big for a
#     slot, the journal's records and the batch are appended to a segment in one commit
#     (the consolidation), and the slots become free. Records at or below the segments'
#     last seq in a slot are stale copies and are ignored.
#   LittleFS commits a file on close, so every write is all or nothing, and the records
#   on flash are always a gap-free run of those appended.
# - Sequence numbers are leased: the state file always holds a seq above every one handed
#   out, so a power cut never leads to a seq being used twice.
# - Only whole segments the host has acknowledged are deleted, oldest first, only when
#   space is needed, and never the newest one (it anchors the sequence).
# - Reads are stateless (read_into): a reader carries the next seq, nothing else.
# - The store never formats and never rewrites a record in place; bad bytes are skipped by
#   CRC and reported as event records.
import os
import struct

from micropython import const

from core import atomic, record

FULL_MESSAGE = "storage full - sync"
_STATE = "/state"
_STATE_FMT = "<III"  # seq lease, acked seq, boot counter
_STATE_BYTES = const(12)
_LEASE = const(64)  # seqs handed out per state write
# A flush moves the lease on while fewer than this many seqs are left of it, so that the
# few records a visit appends between two flushes never need a state write in append():
# a write that fails there cannot wait in RAM, one that fails in flush() can (the batch
# stays and the caller recovers). append() still writes the lease when it must.
_LEASE_AHEAD = const(16)
_SEQ_LAST = const(0xFFFFFFFE)  # the lease (u32) must be able to lie above every seq
_MAX_SEQ = const(0xFFFFFFFF)
_SLOTS_PER_DIR = const(16)
_INLINE_BYTES = const(128)  # LittleFS keeps a file this small inside the metadata (below)
_REPORTED_MAX = const(16)
_S_IFDIR = const(0x4000)
_ENOENT = const(2)
_EEXIST = const(17)
_ENOSPC = const(28)
# Entries of the segment and journal lists: [id, bytes, records, last seq, first seq].
# id: a segment's name (the seq it was started at), a journal slot's number. The counts
# are of the records read from it: CRC-valid, above every seq before it (a repeated or
# stale seq is skipped).
_ID = const(0)
_BYTES = const(1)
_COUNT = const(2)
_LAST = const(3)
_FIRST = const(4)
# stat of a scan: bytes skipped between valid records, after the last one, valid bytes,
# file offset of the scan buffer's first byte.
_CORRUPT = const(0)
_TORN = const(1)
_VALID = const(2)
_POS = const(3)

_OPEN = {}  # root -> the Store that opened it: one Store per directory


class StoreError(Exception):
    # The message is meant for the screen: short, and says what to do.
    pass


class StoreFull(StoreError):
    def __init__(self):
        super().__init__(FULL_MESSAGE)


class RecordsGone(StoreError):
    # read_into() from a seq whose records were deleted after the host acknowledged them:
    # a reader resuming there would otherwise skip them without knowing.
    pass


class Store:
    """Records on flash. Every method raises StoreError (or StoreFull) for storage trouble.

    root: a directory on the mounted filesystem, created if missing (never formatted).
    buf_bytes: the RAM batch; a full batch flushes itself. segment_bytes: size cap of one
    segment file (None: what three filesystem blocks hold, 12276 B on 4 KB blocks: LittleFS
    keeps one pointer in the second block and two in the third, measured). A journal
    consolidation goes to the newest segment only if it still fits: with about 2.8 KB per
    consolidation, three blocks end up 92 % full, two blocks only 70 %.
    session_bytes: room a new session needs beyond the reserve.
    reserve_bytes: free space kept for the filesystem and a running session
    (None: segment_bytes + 4 filesystem blocks).
    journal_slots: small files a flush can go to before a consolidation (0: every flush
    appends to a segment). slot_bytes: the largest batch a slot takes (None: what LittleFS
    keeps inline, min(128, block size / 8) with MicroPython's default cache).
    """

    def __init__(
        self,
        root,
        buf_bytes=1024,
        segment_bytes=None,
        session_bytes=8192,
        reserve_bytes=None,
        journal_slots=64,
        slot_bytes=None,
    ):
        if buf_bytes < record.MAX_BYTES or (segment_bytes or buf_bytes) < buf_bytes:
            raise ValueError("store: need record.MAX_BYTES <= buf_bytes <= segment_bytes")
        self._root = root.rstrip("/")
        self._buf = bytearray(buf_bytes)
        self._mv = memoryview(self._buf)
        self._rbuf = bytearray(2 * record.MAX_BYTES)  # scans inside one call
        self._rmv = memoryview(self._rbuf)
        self._sbuf = bytearray(_STATE_BYTES + atomic.OVERHEAD_BYTES)
        self._stat = [0, 0, 0, 0]
        self._segment_bytes = segment_bytes
        self._session_bytes = session_bytes
        self._reserve = reserve_bytes
        self._slots = journal_slots  # usable slots (fewer if a name is in the way)
        self._wanted_slots = journal_slots
        self._slot_bytes_wanted = slot_bytes
        self._slot_bytes = 0  # known at mount
        self._fill = 0
        self._buffered = 0  # records in the batch
        # Seqs of the first and last batch records: next_seq may jump past them (a new
        # lease at a remount), so the batch keeps its own.
        self._first_buffered = 0
        self._last_buffered = 0
        self._segs = []  # oldest first
        self._journal = []  # in seq order; slots 0..len-1 when the ring is in order
        self._next_slot = 0  # journal_slots: the ring must be consolidated first
        self._active = False  # the newest segment may take appends
        # Where the last read_into stopped: (is a segment, id, file offset, last seq). Only
        # a shortcut: a read that does not continue it scans its file from the start.
        self._hint = None
        self._reported = []
        self._uptime_ms = 0
        self._wall_s = None
        self.next_seq = 1
        self.stored_seq = 0  # highest seq durably on flash
        self.acked_seq = 0  # the host has durably stored everything <= this
        self.boot = 0
        self._lease = 0
        self._open = False
        self._booted = False  # a boot was counted: open() again is a recovery, not a boot
        self._needs_open = False  # a write failed: the RAM view may not match the flash

    # --- mount -------------------------------------------------------------------------

    def open(self, uptime_ms, wall_s=None, cause=0):
        """Mounts the log: recover, count a boot, report problems. Returns their number.

        Appends a boot event (detail = cause) and one store event per problem, and
        flushes them (unless the disk is full: then they wait in the batch). After a
        StoreError, remount the filesystem (drivers.flashfs.mount) and call open() again
        on the same Store: that is a recovery, not a boot; the records still in its batch
        keep their seqs and are written then (those a failed flush did write are dropped
        from the batch, never written twice).
        """
        holder = _OPEN.get(self._root)
        if holder is not None and holder is not self:
            raise StoreError("storage in use - restart")  # a second Store would lose data
        _OPEN[self._root] = self
        self._uptime_ms = uptime_ms
        self._wall_s = wall_s
        self._open = False
        try:
            problems = self._mount()
        except OSError as err:
            raise _failure(err) from None
        self._open = True
        self._needs_open = False
        if not self._booted:
            self._booted = True
            self.append(record.TYPE_EVENT, uptime_ms, wall_s, (record.EV_BOOT, cause, 0, 0))
        for detail, where, nbytes in problems:
            self._report(detail, where, nbytes)
        try:
            self.flush()
        except StoreFull:
            pass  # the UI shows the full store when a session is refused
        return len(problems)

    def close(self):
        """Ends this Store without writing anything, as a power cut would: records not yet
        flushed are dropped (flush() first to keep them). Another Store may then open the
        directory."""
        if _OPEN.get(self._root) is self:
            del _OPEN[self._root]
        self._open = False
        self._booted = False  # opened again, it counts a boot
        self._fill = 0
        self._buffered = 0

    def _mount(self):
        root = self._root
        try:
            names = _list(root)
        except OSError as err:
            if atomic.errno_of(err) != _ENOENT:
                raise
            os.mkdir(root)  # a missing directory is created; a bad filesystem raises here
            names = []
        block = os.statvfs(root)[1]
        if self._segment_bytes is None:
            self._segment_bytes = max(3 * block - 12, len(self._buf))
        if self._reserve is None:
            self._reserve = self._segment_bytes + 4 * block
        wanted = self._slot_bytes_wanted
        self._slot_bytes = min(_INLINE_BYTES, block // 8) if wanted is None else wanted
        firsts = []
        slots = []
        stray = 0
        dirs = 0
        blocked = self._wanted_slots  # the first slot whose name a directory has taken
        for name, is_dir in names:
            if name == _STATE[1:] or name == _STATE[1:] + atomic.TMP_SUFFIX:
                continue
            if _segment_name(name) and not is_dir:
                firsts.append(int(name[1:], 16))
            elif name[:1] == "J" and _number(name[1:]) >= 0 and is_dir:
                d = _number(name[1:])
                dirs |= 1 << d if d < 32 else 0
                for slot_name, slot_is_dir in _list(root + "/" + name):
                    n = _number(slot_name)
                    if 0 <= n < _SLOTS_PER_DIR and not slot_is_dir:
                        slots.append(d * _SLOTS_PER_DIR + n)
                    else:
                        stray += 1
                        if 0 <= n < _SLOTS_PER_DIR:
                            blocked = min(blocked, d * _SLOTS_PER_DIR + n)
            else:
                stray += 1  # reported and left alone: not the store's to read or delete
        self._slots = min(self._usable_slots(dirs), blocked)
        firsts.sort()
        state = atomic.read(root + _STATE, self._sbuf)
        problems = []
        if stray:
            problems.append((record.ST_STRAY, 0, stray))
        if state is not None and len(state) == _STATE_BYTES:
            lease, acked, boot = struct.unpack(_STATE_FMT, state)
        else:
            state = None
            lease = acked = boot = 0
        self._reported = []
        self._hint = None
        self._segs = []
        self._active = False
        last = 0
        last_boot = 0
        stat = self._stat
        for first in firsts:
            seg = [first, 0, 0, 0, 0]
            path = self._segment_path(first)
            stat[_CORRUPT] = stat[_TORN] = stat[_VALID] = 0
            repeated = 0
            for seq, off, _n in self._scan(path, stat, 0):
                if seq <= last:
                    repeated += 1
                    continue
                last = seq
                last_boot = record.boot_of(self._rbuf, off)
                _take(seg, seq)
            seg[_BYTES] = stat[_CORRUPT] + stat[_TORN] + stat[_VALID]
            if seg[_BYTES] == 0:
                os.remove(path)  # created, then power failed before its data
                problems.append((record.ST_EMPTY, first, 0))
                continue
            self._segs.append(seg)
            _problems(problems, first, stat, repeated)
            # Never append after bad bytes: the next consolidation starts a new segment.
            self._active = not (stat[_CORRUPT] or stat[_TORN] or repeated)
        last, last_boot = self._mount_journal(slots, last, last_boot, problems)
        if state is None:
            if last:
                problems.append((record.ST_STATE, 0, 0))
                # Seqs up to a lease beyond the last stored one may have been handed out
                # (in RAM, never stored): skip them rather than hand one out twice.
                lease = last + 1 + _LEASE
            boot = last_boot  # unknown: at least the last boot seen in the log
        self.stored_seq = last
        self.acked_seq = min(acked, last)
        self.next_seq = min(max(lease, last + 1, self.next_seq, 1), _SEQ_LAST + 1)
        if not self._booted:
            self.boot = boot + 1
        self._drop_stored()
        self._lease = min(self.next_seq + _LEASE, _SEQ_LAST + 1)
        self._write_state()
        return problems

    def _usable_slots(self, dirs):
        # The ring needs its directories J0, J1, ...; one that cannot be made (a file of
        # that name is in the way) ends the ring there.
        wanted = self._wanted_slots
        for d in range((wanted + _SLOTS_PER_DIR - 1) // _SLOTS_PER_DIR):
            if not dirs >> d & 1:
                try:
                    os.mkdir("%s/J%d" % (self._root, d))
                except OSError as err:
                    if atomic.errno_of(err) != _EEXIST:
                        raise  # an I/O error fails the mount, to be retried
                    return d * _SLOTS_PER_DIR
        return wanted

    def _mount_journal(self, slots, last, last_boot, problems):
        # Slots holding records above the segments' last seq, in seq order; the rest are
        # stale. Returns the last seq and boot stored.
        stat = self._stat
        live = []
        for slot in slots:
            scan = self._scan(self._slot_path(slot), stat, 0)
            try:
                for seq, _off, _n in scan:
                    if seq > last:
                        live.append((seq, slot))
                        break
            finally:
                scan.close()  # MicroPython closes a generator (and its file) only when told
        live.sort()
        journal = []
        for first, slot in live:
            entry = [slot, 0, 0, 0, 0]
            stat[_CORRUPT] = stat[_TORN] = stat[_VALID] = 0
            repeated = 0
            for seq, off, n in self._scan(self._slot_path(slot), stat, 0):
                if seq <= last:
                    if entry[_COUNT]:
                        repeated += 1  # stale records are expected before the live ones
                    continue
                last = seq
                last_boot = record.boot_of(self._rbuf, off)
                _take(entry, seq)
                entry[_BYTES] += n
            if entry[_COUNT]:
                journal.append(entry)
            _problems(problems, first, stat, repeated)
        self._journal = journal
        in_order = True
        for i in range(len(journal)):
            in_order = in_order and journal[i][_ID] == i
        # A ring out of order (another slot count before, a revived stale slot) is
        # consolidated by the next flush before a slot is written again.
        self._next_slot = len(journal) if in_order else self._slots
        return last, last_boot

    def _drop_stored(self):
        # A recovery after a failed flush that did reach the flash: those records are
        # stored; writing them again would store them twice.
        buf = self._buf
        off = 0
        dropped = 0
        while off < self._fill and record.seq_of(buf, off) <= self.stored_seq:
            off += buf[off + 2]
            dropped += 1
        if dropped:
            buf[0 : self._fill - off] = buf[off : self._fill]
            self._fill -= off
            self._buffered -= dropped
            if self._buffered:
                self._first_buffered = record.seq_of(buf, 0)

    def _segment_path(self, first):
        return "%s/L%08X" % (self._root, first)

    def _slot_path(self, slot):
        return "%s/J%d/%d" % (self._root, slot // _SLOTS_PER_DIR, slot % _SLOTS_PER_DIR)

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
        if seq > _SEQ_LAST:
            raise StoreError("storage numbers used up - service")
        if seq >= self._lease:
            # The lease on flash must cover every seq handed out: raise it there first.
            old = self._lease
            self._lease = min(seq + _LEASE, _SEQ_LAST + 1)
            try:
                self._write_state()
            except OSError as err:
                self._lease = old
                raise self._failed(err, seq) from None
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

        On an error the batch stays in RAM (not stored) and StoreError says why. After an
        I/O error, flush() refuses until the filesystem is remounted and open() called.
        """
        self._writable()
        if not self._fill:
            return self.stored_seq
        if self.next_seq + _LEASE_AHEAD > self._lease and self._lease <= _SEQ_LAST:
            old = self._lease
            self._lease = min(self.next_seq + _LEASE, _SEQ_LAST + 1)
            try:
                self._write_state()
            except OSError as err:
                self._lease = old
                raise self._failed(err, self._first_buffered) from None
        if self._slots_needed() <= self._slots - self._next_slot:
            try:
                self._write_slots()
            finally:
                self._drop_stored()  # what reached a slot is stored, even if a later one failed
        else:
            self._consolidate()
            self.stored_seq = self._last_buffered
            self._fill = 0
            self._buffered = 0
        return self.stored_seq

    def _writable(self):
        if not self._open:
            raise StoreError("storage not open")
        if self._needs_open:
            raise StoreError("storage error - restart")

    def _slots_needed(self):
        # Slots the batch takes, split at record boundaries (more than any ring has when a
        # record is bigger than a slot).
        buf = self._buf
        limit = self._slot_bytes
        need = 0
        room = 0
        off = 0
        while off < self._fill:
            n = buf[off + 2]
            if n > limit:
                return _MAX_SEQ
            if n > room:
                need += 1
                room = limit
            room -= n
            off += n
        return need

    def _write_slots(self):
        # One metadata commit per slot: the slot's old content (stale) or the new, never a
        # mix. A batch that takes several slots is stored slot by slot, in seq order, so a
        # cut between two leaves its first records stored and no gap.
        buf = self._buf
        limit = self._slot_bytes
        begin = 0
        while begin < self._fill:
            end = begin
            count = 0
            last = 0
            while end < self._fill and end + buf[end + 2] - begin <= limit:
                last = record.seq_of(buf, end)
                end += buf[end + 2]
                count += 1
            first = record.seq_of(buf, begin)
            slot = self._next_slot
            try:
                _write_file(self._slot_path(slot), "wb", self._mv[begin:end])
            except OSError as err:
                raise self._failed(err, first) from None
            self._journal.append([slot, end - begin, count, last, first])
            self._next_slot = slot + 1
            self.stored_seq = last
            begin = end

    def _consolidate(self):
        # The journal's records, then the batch, appended to a segment in one commit. A
        # cut before the commit leaves the journal as it was; after it, the slots hold
        # stale copies (at or below the segment's last seq), which mount ignores.
        journal = self._journal
        nbytes = self._fill + self._total_journal()
        first = journal[0][_FIRST] if journal else self._first_buffered
        segs = self._segs
        fresh = not self._active or not segs or segs[-1][_BYTES] + nbytes > self._segment_bytes
        if fresh:
            self._require(nbytes)
            seg = [first, 0, 0, 0, 0]
        else:
            seg = segs[-1]
        stat = self._stat
        last = self._segments_last()  # journal records at or below it are stale copies
        written = count = 0
        try:
            f = open(self._segment_path(seg[_ID]), "ab")
            try:
                for entry in journal:
                    for seq, off, n in self._scan(self._slot_path(entry[_ID]), stat, 0):
                        if seq > last:
                            f.write(self._rmv[off : off + n])
                            written += n
                            count += 1
                            last = seq
                if self._fill:
                    f.write(self._mv[: self._fill])
                    written += self._fill
                    count += self._buffered
                    last = self._last_buffered
            except OSError:
                atomic.close_quietly(f)
                raise
            f.close()
        except OSError as err:
            self._active = False  # retry into a fresh segment, never after a partial write
            raise self._failed(err, first) from None
        if fresh:
            segs.append(seg)
            self._active = True
        seg[_BYTES] += written
        seg[_COUNT] += count
        seg[_LAST] = last
        if not seg[_FIRST]:
            seg[_FIRST] = first
        del journal[:]
        self._next_slot = 0
        self._hint = None  # slot numbers are about to mean other records

    def _segments_last(self):
        for i in range(len(self._segs) - 1, -1, -1):
            if self._segs[i][_COUNT]:
                return self._segs[i][_LAST]
        return 0

    def _failed(self, err, where):
        # A write failed. Unless the filesystem was full (LittleFS then commits nothing),
        # whether it reached the flash is unknown: the next write waits for a recovery
        # that reads the log again (open()).
        code = atomic.errno_of(err)
        if code != _ENOSPC:
            self._needs_open = True
            self._report(record.ST_IO, where, code)
        return _failure(err)

    def _report(self, detail, where, nbytes):
        # One store event per problem place per boot, into the batch (flushed with it).
        if detail != record.ST_IO:
            key = (where & 0xFFFFFFF) << 3 | detail
            if key in self._reported:
                return
            if len(self._reported) < _REPORTED_MAX:
                self._reported.append(key)
        if self._fill + record.EVENT_MAX_BYTES > len(self._buf) or self.next_seq >= self._lease:
            return  # no room without a write: the problem is reported at the next mount
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
        # The journal's records will need room in a segment too, maybe during the session.
        return self._session_bytes + self._total_journal() + self._fill + record.MAX_BYTES

    def _total_journal(self):
        n = 0
        for entry in self._journal:
            n += entry[_BYTES]
        return n

    def _require(self, nbytes):
        # Free space for nbytes beyond the reserve, reclaiming acknowledged segments.
        try:
            if self._free() >= self._reserve + nbytes:
                return
            if self._reclaim(self._reserve + nbytes) >= self._reserve + nbytes:
                return
        except OSError as err:
            raise self._failed(err, 0) from None
        raise StoreFull()

    def _reclaim(self, target):
        free = self._free()
        segs = self._segs
        # Oldest first, whole segments, all acknowledged, never the newest one.
        while free < target and len(segs) > 1 and segs[0][_LAST] <= self.acked_seq:
            os.remove(self._segment_path(segs[0][_ID]))
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
        self._writable()
        old = self.acked_seq
        self.acked_seq = seq
        try:
            self._write_state()
        except OSError as err:
            self.acked_seq = old
            raise self._failed(err, seq) from None
        return seq

    def first_seq(self):
        """The oldest stored record's seq (0 when none is stored)."""
        n = len(self._segs)
        for i in range(n + len(self._journal)):
            entry = self._segs[i] if i < n else self._journal[i - n]
            if entry[_COUNT]:
                return entry[_FIRST]
        return 0

    def read_into(self, buf, from_seq=1, to_seq=_MAX_SEQ):
        """Packs stored records with from_seq <= seq <= to_seq into buf, whole, in seq
        order, from offset 0. Returns (bytes used, seq to pass next time); the next seq is
        0 when no stored record in the range is left. Stateless: readers may interleave,
        and a reader that stops just does not call again.

        from_seq 0 or 1: from the oldest stored record. A from_seq whose records the host
        acknowledged and the store then deleted raises RecordsGone, never a silent skip.
        A buf too small for the next record raises ValueError (MAX_BYTES always fits).
        """
        if not self._open:
            raise StoreError("storage not open")
        first = self.first_seq()
        if 1 < from_seq < first and from_seq <= self.acked_seq:
            raise RecordsGone("records %d-%d were deleted after their ack" % (from_seq, first - 1))
        from_seq = max(from_seq, 1)
        segs = self._segs
        journal = self._journal
        nseg = len(segs)
        stat = self._stat
        size = len(buf)
        used = 0
        last = from_seq - 1
        hint = self._hint
        for i in range(nseg + len(journal)):
            entry = segs[i] if i < nseg else journal[i - nseg]
            if entry[_LAST] <= last or not entry[_COUNT]:
                continue
            if entry[_FIRST] > to_seq:
                break
            is_seg = i < nseg
            start = 0
            if (
                used == 0
                and hint is not None
                and hint[0] == is_seg
                and hint[1] == entry[_ID]
                and hint[3] == last
            ):
                start = hint[2]  # the record after the one the last read stopped at
            path = self._segment_path(entry[_ID]) if is_seg else self._slot_path(entry[_ID])
            stat[_CORRUPT] = stat[_TORN] = stat[_VALID] = 0
            scan = self._scan(path, stat, start)
            try:
                for seq, off, n in scan:
                    if seq <= last:
                        continue
                    if seq > to_seq:
                        return used, 0
                    if used + n > size:
                        if not used:
                            raise ValueError("read_into: a %d-byte record, buffer %d" % (n, size))
                        self._hint = (is_seg, entry[_ID], stat[_POS] + off, last)
                        return used, last + 1
                    buf[used : used + n] = self._rmv[off : off + n]
                    used += n
                    last = seq
            except OSError as err:
                raise _failure(err) from None
            finally:
                scan.close()
            if stat[_CORRUPT]:
                self._report(record.ST_CORRUPT, entry[_FIRST], stat[_CORRUPT])
        return used, 0

    def records(self, from_seq=1, to_seq=_MAX_SEQ):
        """Yields (seq, memoryview of the raw record) for stored records in seq order, by
        read_into(): the view is valid until the next step. For tools and tests."""
        buf = bytearray(record.MAX_BYTES)
        view = memoryview(buf)
        nxt = from_seq
        while True:
            used, nxt = self.read_into(buf, nxt, to_seq)
            off = 0
            while off < used:
                n = buf[off + 2]
                yield record.seq_of(buf, off), view[off : off + n]
                off += n
            if not nxt:
                return

    def count(self, from_seq=1, to_seq=_MAX_SEQ):
        """Number of stored records with from_seq <= seq <= to_seq (RACP 0x04)."""
        if not self._open:
            raise StoreError("storage not open")
        segs = self._segs
        journal = self._journal
        nseg = len(segs)
        stat = self._stat
        n = 0
        last = 0  # the last seq of the files before: the scan skips what is not above it
        for i in range(nseg + len(journal)):
            entry = segs[i] if i < nseg else journal[i - nseg]
            if not entry[_COUNT]:
                continue
            if from_seq <= entry[_FIRST] and entry[_LAST] <= to_seq:
                n += entry[_COUNT]
            elif entry[_LAST] >= from_seq and entry[_FIRST] <= to_seq:
                path = self._segment_path(entry[_ID]) if i < nseg else self._slot_path(entry[_ID])
                try:
                    for seq, _off, _n in self._scan(path, stat, 0):
                        if seq > last:
                            last = seq
                            if from_seq <= seq <= to_seq:
                                n += 1
                except OSError as err:
                    raise _failure(err) from None
            last = entry[_LAST]
        return n

    def stats(self):
        """Counts for the status screen and the sync status characteristic."""
        try:
            free = self._free()
        except OSError:
            free = None  # the status screen still shows the counts
        try:
            unacked = self.count(self.acked_seq + 1)
        except StoreError:
            unacked = None
        return {
            "records": self._total(_COUNT),
            "bytes": self._total(_BYTES),
            "free_bytes": free,
            "unacked": unacked,
            "buffered": self._buffered,
            "segments": len(self._segs),
            "journal": len(self._journal),
            "first_seq": self.first_seq(),
            "next_seq": self.next_seq,
            "stored_seq": self.stored_seq,
            "acked_seq": self.acked_seq,
            "boot": self.boot,
        }

    def _total(self, field):
        n = 0
        for entry in self._segs:
            n += entry[field]
        for entry in self._journal:
            n += entry[field]
        return n

    # --- files -------------------------------------------------------------------------

    def _scan(self, path, stat, start):
        # Valid records of one file from byte start on, as (seq, offset in self._rbuf,
        # length); the buffer holds each one while it is yielded. Adds to stat (see _POS).
        f = open(path, "rb")
        try:
            if start:
                f.seek(start)
            buf = self._rbuf
            mv = self._rmv
            size = len(buf)
            stat[_POS] = start
            begin = 0
            end = 0
            eof = False
            bad = 0
            while True:
                if not eof and end - begin < record.MAX_BYTES:
                    if begin:
                        mv[0 : end - begin] = mv[begin:end]
                        stat[_POS] += begin
                        end -= begin
                        begin = 0
                    got = f.readinto(mv[end:size])
                    if got:
                        end += got
                    else:
                        eof = True
                if begin >= end:
                    break
                n = record.check(buf, begin, end)
                if n > 0:
                    stat[_CORRUPT] += bad
                    stat[_VALID] += n
                    bad = 0
                    yield record.seq_of(buf, begin), begin, n
                    begin += n
                elif n == 0 or eof:
                    bad += 1  # resync byte by byte: a bit flip costs one record, not the rest
                    begin += 1
            stat[_TORN] += bad
        finally:
            atomic.close_quietly(f)

    def _write_state(self):
        sbuf = self._sbuf
        struct.pack_into(_STATE_FMT, sbuf, 0, self._lease, self.acked_seq, self.boot)
        atomic.write(self._root + _STATE, memoryview(sbuf)[:_STATE_BYTES])


def _take(entry, seq):
    # One more record read from a file into its list entry.
    if not entry[_COUNT]:
        entry[_FIRST] = seq
    entry[_COUNT] += 1
    entry[_LAST] = seq


def _problems(problems, where, stat, repeated):
    if stat[_CORRUPT]:
        problems.append((record.ST_CORRUPT, where, stat[_CORRUPT]))
    if stat[_TORN]:
        problems.append((record.ST_TORN, where, stat[_TORN]))
    if repeated:
        problems.append((record.ST_ORDER, where, repeated))


def _write_file(path, mode, data):
    f = open(path, mode)
    try:
        f.write(data)
    except OSError:
        atomic.close_quietly(f)
        raise
    f.close()


def _list(path):
    # (name, is a directory) for each name in path.
    ilistdir = getattr(os, "ilistdir", None)  # MicroPython: the type without a stat each
    if ilistdir is not None:
        return [(entry[0], entry[1] == _S_IFDIR) for entry in ilistdir(path)]
    return [(name, os.stat(path + "/" + name)[0] & _S_IFDIR != 0) for name in os.listdir(path)]


def _segment_name(name):
    # L + 8 upper-case hex digits, exactly as _segment_path writes it.
    if len(name) != 9 or name[0] != "L":
        return False
    for ch in name[1:]:
        if not ("0" <= ch <= "9" or "A" <= ch <= "F"):
            return False
    return True


def _number(text):
    # A decimal number written as str() writes it, else -1.
    if not text or len(text) > 3 or (text[0] == "0" and len(text) > 1):
        return -1
    for ch in text:
        if not "0" <= ch <= "9":
            return -1
    return int(text)


def _failure(err):
    code = atomic.errno_of(err)
    if code == _ENOSPC:  # the filesystem itself ran out of blocks
        return StoreFull()
    return StoreError("storage error %d - restart" % code)
