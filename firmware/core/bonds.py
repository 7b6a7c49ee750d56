# The Bluetooth stack's secrets (bonds with laptops, the device's own IRK), kept in RAM for
# the stack's IRQs 29/30 and persisted whole in one small file (core.atomic) by the BLE task,
# never from inside an IRQ. The values are opaque to the firmware (NimBLE's own structs).
# docs/protocol.md, "Pairing and bonding".
#
# File payload: u8 entries, then per entry u8 type, u8 key length, u8 value length, key,
# value. Types as MicroPython's NimBLE binding uses them: 1 our keys, 2 a peer's keys (both
# keyed by the peer's address), 10 our IRK.
from micropython import const

from core import atomic

SECRET_OUR_SEC = const(1)
SECRET_PEER_SEC = const(2)
SECRET_OUR_IRK = const(10)
KEY_MAX_BYTES = const(32)
VALUE_MAX_BYTES = const(128)
# Laptops remembered at once; pairing another forgets the one bonded longest ago. A pairing
# happens only while the clinician has opened the window, so that one is wanted.
PEERS_MAX = const(4)
_ENTRIES_MAX = const(2 * PEERS_MAX + 1)  # our + peer keys per laptop, and the IRK
_ENTRY_HEAD = const(3)
FILE_MAX_BYTES = const(1 + _ENTRIES_MAX * (_ENTRY_HEAD + KEY_MAX_BYTES + VALUE_MAX_BYTES))


class Bonds:
    """The secrets, oldest first: get() answers IRQ 29, set() IRQ 30 (both allocation-light,
    no I/O); save() writes the file when `dirty` (the task's job)."""

    def __init__(self, path):
        self.path = path
        self._entries = []  # [type, key bytes, value bytes]
        self.dirty = False
        self._buf = None

    def load(self):
        """Reads the file; a missing or damaged file is no bonds (laptops pair again).
        Returns the number of entries. Raises OSError for an unreadable file."""
        self._buf = bytearray(FILE_MAX_BYTES + atomic.OVERHEAD_BYTES)
        payload = atomic.read(self.path, self._buf)
        self._entries = [] if payload is None else _parse(payload)
        self._buf = None  # needed only at boot: give the RAM back
        self.dirty = False
        return len(self._entries)

    def save(self):
        """Writes every entry (core.atomic: all or nothing). Raises OSError."""
        atomic.write(self.path, self.payload())
        self.dirty = False

    def payload(self):
        out = bytearray((len(self._entries),))
        for sec_type, key, value in self._entries:
            out.append(sec_type)
            out.append(len(key))
            out.append(len(value))
            out.extend(key)
            out.extend(value)
        return out

    def get(self, sec_type, index, key):
        """IRQ 29: the value stored under key, or with key None the index-th of that type."""
        n = 0
        for entry in self._entries:
            if entry[0] != sec_type:
                continue
            if key is None:
                if n == index:
                    return entry[2]
                n += 1
            elif entry[1] == key:
                return entry[2]
        return None

    def set(self, sec_type, key, value):
        """IRQ 30: store (value None: delete). False when it cannot be kept."""
        key = bytes(key)
        if not 0 < len(key) <= KEY_MAX_BYTES:
            return False
        if value is not None and not 0 < len(value) <= VALUE_MAX_BYTES:
            return False
        entries = self._entries
        for i in range(len(entries)):
            if entries[i][0] == sec_type and entries[i][1] == key:
                entries.pop(i)
                break
        if value is not None:
            if sec_type != SECRET_OUR_IRK and self.peers(sec_type) >= PEERS_MAX:
                self._forget_oldest(sec_type)  # (a new list)
            self._entries.append([sec_type, key, bytes(value)])
        self.dirty = True
        return True

    def peers(self, sec_type=SECRET_PEER_SEC):
        n = 0
        for entry in self._entries:
            if entry[0] == sec_type:
                n += 1
        return n

    def _forget_oldest(self, sec_type):
        # The oldest laptop: its keys of both types go, so no half bond is left.
        for entry in self._entries:
            if entry[0] == sec_type:
                key = entry[1]
                self._entries = [
                    e
                    for e in self._entries
                    if not (e[1] == key and e[0] in (SECRET_OUR_SEC, SECRET_PEER_SEC))
                ]
                return

    def clear(self):
        """Forget every laptop (keep the IRK): the clinician's "forget paired laptops"."""
        self._entries = [e for e in self._entries if e[0] == SECRET_OUR_IRK]
        self.dirty = True


def _parse(payload):
    # A file that does not parse whole is treated as none: a half bond is worse than none.
    n = len(payload)
    if n < 1:
        return []
    count = payload[0]
    p = 1
    entries = []
    for _ in range(count):
        if p + _ENTRY_HEAD > n:
            return []
        sec_type, klen, vlen = payload[p], payload[p + 1], payload[p + 2]
        p += _ENTRY_HEAD
        if not 0 < klen <= KEY_MAX_BYTES or not 0 < vlen <= VALUE_MAX_BYTES or p + klen + vlen > n:
            return []
        entries.append(
            [sec_type, bytes(payload[p : p + klen]), bytes(payload[p + klen : p + klen + vlen])]
        )
        p += klen + vlen
    if p != n or len(entries) > _ENTRIES_MAX:
        return []
    return entries
