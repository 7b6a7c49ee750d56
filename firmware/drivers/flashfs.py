# The filesystem on the flash partition: the block device behind a fence, and the (re)mount
# the record store's recovery needs (docs/storage.md, "When the flash fails").
#
# Why a fence: when a block device *raises* inside LittleFS, the exception unwinds through
# its C code half way through an operation. The VfsLfs2 object is then inconsistent, and a
# file it had open stays open: when the garbage collector later finalises that file, its
# close() commits stale metadata through the old mount onto the filesystem a new mount is
# using (measured: flushed records lost, seqs reused). So:
# - Fence turns an OSError raised by the device into -EIO returned to LittleFS, which then
#   fails the operation cleanly and closes its files (a board's partition driver raises).
# - Each mount gets its own view of the device; mounting again fences every older view, so
#   whatever an abandoned mount does later is refused without touching the flash.
# The device comes in as an argument (board.py builds it): anything with the block protocol
# readblocks(block, buf, offset), writeblocks(block, buf, offset), ioctl(op, arg).
import vfs
from micropython import const

_EIO = const(5)
_IOCTL_BLOCK_COUNT = const(4)
_IOCTL_BLOCK_SIZE = const(5)


class Fence:
    """A block device that only its newest mount may use."""

    def __init__(self, device):
        self.device = device
        self.generation = 0

    def view(self):
        """A block device for one new mount; every older view is refused from now on."""
        self.generation += 1
        return _View(self, self.generation)


class _View:
    # Runs inside LittleFS, maybe from a finaliser while the heap is locked: a refused call
    # returns a small int and allocates nothing.
    def __init__(self, fence, generation):
        self._fence = fence
        self._generation = generation

    def readblocks(self, block, buf, offset=0):
        fence = self._fence
        if fence.generation != self._generation:
            return -_EIO
        try:
            return fence.device.readblocks(block, buf, offset)
        except OSError:
            return -_EIO

    def writeblocks(self, block, buf, offset=None):
        fence = self._fence
        if fence.generation != self._generation:
            return -_EIO
        try:
            return fence.device.writeblocks(block, buf, offset)
        except OSError:
            return -_EIO

    def ioctl(self, op, arg):
        fence = self._fence
        if op == _IOCTL_BLOCK_COUNT or op == _IOCTL_BLOCK_SIZE:
            return fence.device.ioctl(op, arg)  # geometry: no flash access
        if fence.generation != self._generation:
            return -_EIO  # erase, sync, init, deinit of an abandoned mount: refused
        try:
            return fence.device.ioctl(op, arg)
        except OSError:
            return -_EIO


def mount(fence, path):
    """Mounts the filesystem on fence at path on a fresh VfsLfs2, replacing any mount there.

    The first mount at boot and the recovery after a storage error are the same call
    (VfsLfs2's defaults: the board's 4 KB blocks). Never formats: a
    filesystem that does not mount raises OSError, for the board to show.
    """
    view = fence.view()  # fences the old mount before anything else can run
    try:
        vfs.umount(path)
    except OSError:
        pass  # nothing mounted there yet
    vfs.mount(vfs.VfsLfs2(view), path)
