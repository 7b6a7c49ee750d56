# A NOR flash chip in RAM with the MicroPython extended block protocol, for vfs.VfsLfs2.
# Runs unchanged on CPython and on the micropython unix port.
#
# Fault injection, for the power-loss tests:
# - cut(n, torn): power fails at program/erase operation number n (0-based, counted from
#   creation). Clean: that operation is not applied. Torn: its first half is applied.
#   That operation raises PowerCut; every later call fails with -EIO (the chip is off);
#   image() is what survives.
# - flip_bit(byte_offset, bit): a bit rots in place (no operation counted).
# - fail(mode): every read/program/erase fails from now on until fail(None):
#   "return" returns -EIO to LittleFS (a clean OSError from the filesystem call),
#   "raise" raises OSError(EIO) from the device, like a board driver does (drivers/flashfs
#   turns that into -EIO for LittleFS; a raw VfsLfs2 on this device is left inconsistent).
# - fail_once(n, mode): device call number n (reads, programs and erases, counted in
#   device_ops from creation) fails once in that mode; the device works again after it,
#   as after a transient bus error.
# Programming ANDs bits, as on real NOR flash: a filesystem that programmed twice without
# an erase would corrupt its own data here too. Reads, programs and erases also work while
# the heap is locked (a file's finaliser can call in then), as a board's C driver does: a
# fake that failed there would hide what a stale finaliser writes.

_EIO = 5
_IOCTL_INIT = 1
_IOCTL_DEINIT = 2
_IOCTL_SYNC = 3
_IOCTL_BLOCK_COUNT = 4
_IOCTL_BLOCK_SIZE = 5
_IOCTL_BLOCK_ERASE = 6


class PowerCut(Exception):
    # Not an OSError: code under test must not be able to catch it as an I/O error.
    pass


class FakeFlash:
    def __init__(self, block_size=4096, block_count=64, image=None):
        self.block_size = block_size
        self.block_count = block_count
        size = block_size * block_count
        self._erased = bytes(b"\xff" * block_size)
        if image is None:
            # Erased, block by block: no second copy of the whole chip in the heap, which a
            # heap measurement would otherwise have to allow for (bench_visit_heap).
            self.data = bytearray(size)
            self._mv = memoryview(self.data)
            for start in range(0, size, block_size):
                self._mv[start : start + block_size] = self._erased
        else:
            if len(image) != size:
                raise ValueError("image is %d bytes, geometry needs %d" % (len(image), size))
            self.data = bytearray(image)
            self._mv = memoryview(self.data)
        self.ops = 0  # program + erase operations so far: the clock that cut() counts in
        self.programs = 0
        self.erases = 0
        self.reads = 0
        self.programmed_bytes = 0
        self._cut_at = -1
        self._torn = False
        self.dead = False
        self._fail = None
        self.device_ops = 0  # every read, program and erase call: the clock fail_once counts
        self._fail_once_at = -1
        self._fail_once_mode = None

    @classmethod
    def load(cls, path, block_size=4096):
        with open(path, "rb") as f:
            image = f.read()
        return cls(block_size, len(image) // block_size, image)

    def save(self, path):
        with open(path, "wb") as f:
            f.write(self.data)

    def image(self):
        """A copy of the flash contents, for a fresh FakeFlash and a fresh mount."""
        return bytes(self.data)

    def cut(self, op_number, torn=False):
        self._cut_at = op_number
        self._torn = torn

    def fail(self, mode):
        if mode not in (None, "return", "raise"):
            raise ValueError("fail mode: None, 'return' or 'raise'")
        self._fail = mode

    def fail_once(self, op_number, mode):
        if mode not in ("return", "raise"):
            raise ValueError("fail_once mode: 'return' or 'raise'")
        self._fail_once_at = op_number
        self._fail_once_mode = mode

    def flip_bit(self, byte_offset, bit=0):
        self.data[byte_offset] ^= 1 << bit

    def _check(self):
        # Returns an error code for LittleFS, or raises. Counts the call.
        if self.dead:
            # After the cut only clean-up code runs (a file's finaliser may even call in
            # while the heap is locked): fail without allocating. The image is frozen.
            return -_EIO
        number = self.device_ops
        self.device_ops += 1
        mode = self._fail
        if number == self._fail_once_at:
            mode = self._fail_once_mode
        if mode == "raise":
            raise OSError(_EIO)
        if mode == "return":
            return -_EIO
        return 0

    def _tick(self):
        # One program/erase operation; True when power fails on this one.
        number = self.ops
        self.ops += 1
        if number == self._cut_at:
            self.dead = True
            return True
        return False

    def readblocks(self, block, buf, offset=0):
        err = self._check()
        if err:
            return err
        self.reads += 1
        start = block * self.block_size + (offset or 0)
        n = len(buf)
        self._bounds(start, n)
        try:
            buf[0:n] = self._mv[start : start + n]
        except MemoryError:  # heap locked: no slice object, copy byte by byte
            data = self.data
            for i in range(n):
                buf[i] = data[start + i]
        return 0

    def writeblocks(self, block, buf, offset=None):
        err = self._check()
        if err:
            return err
        n = len(buf)
        if offset is None:  # simple protocol: erase the whole blocks, then program
            blocks = (n + self.block_size - 1) // self.block_size
            for i in range(blocks):
                self._erase(block + i)
            offset = 0
        start = block * self.block_size + offset
        self._bounds(start, n)
        if self._tick():
            if self._torn:
                self._program(start, buf, n // 2)
            raise PowerCut("power cut while programming block %d" % block)
        self._program(start, buf, n)
        self.programs += 1
        self.programmed_bytes += n
        return 0

    def _program(self, start, buf, n):
        data = self.data
        try:
            if data[start : start + n] == self._erased[:n]:  # the usual case: fast slice copy
                data[start : start + n] = buf[:n]
                return
        except MemoryError:
            pass  # heap locked: the byte loop below allocates nothing
        for i in range(n):
            data[start + i] &= buf[i]

    def _erase(self, block):
        if block < 0 or block >= self.block_count:
            raise ValueError("erase outside the device: block %d" % block)
        start = block * self.block_size
        if self._tick():
            if self._torn:
                self._fill(start, self.block_size // 2)
            raise PowerCut("power cut while erasing block %d" % block)
        self._fill(start, self.block_size)
        self.erases += 1

    def _fill(self, start, n):
        try:
            self.data[start : start + n] = self._erased[:n]
        except MemoryError:  # heap locked
            data = self.data
            for i in range(n):
                data[start + i] = 0xFF

    def _bounds(self, start, n):
        if start < 0 or start + n > len(self.data):
            raise ValueError("access outside the device: byte %d, %d bytes" % (start, n))

    def ioctl(self, op, arg):
        if op == _IOCTL_BLOCK_COUNT:
            return self.block_count
        if op == _IOCTL_BLOCK_SIZE:
            return self.block_size
        if op == _IOCTL_BLOCK_ERASE:
            err = self._check()
            if err:
                return err
            self._erase(arg)
            return 0
        if op == _IOCTL_INIT or op == _IOCTL_DEINIT or op == _IOCTL_SYNC:
            return 0  # (no tuple: this may run while the heap is locked)
        return None
