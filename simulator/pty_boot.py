# The virtual unit's start-up on the micropython unix port, run before its REPL opens on
# the pty: simulator/pty_unit.py starts
#     micropython -i pty_boot.py FLASH_DIR ROM_FILE ROM_BYTES [EXTRA_DIR ...]
# behind socat. It makes the interpreter look like a board to mpremote and to deploy:
# - the unit's filesystem is FLASH_DIR mounted at "/" (a board's LittleFS), cwd "/";
# - a ROMFS partition of ROM_BYTES (0: none), kept in ROM_FILE (the board's flash
#   partition), written through vfs.rom_ioctl as mpremote's `romfs deploy` writes a board's.
#   The unix port has no rom_ioctl, so a stand-in `vfs` module adds one: the one mock here,
#   for flash hardware that cannot run on a laptop. When the partition holds an image it is
#   mounted at /rom, first on the module path, as a board with ROMFS does at start-up;
# - sys.path as on the ESP32 port: "", ".frozen", "/lib" (after /rom, /rom/lib);
# - each EXTRA_DIR (simulator fakes, say) mounted read-only at /sim0, /sim1, ... and put
#   last on the module path.
# MicroPython only (VfsPosix). The outcome is the global unit_boot: "ok", or the error text,
# which pty_unit reads at the prompt (what the script prints is lost before a host connects).
import io
import sys

import vfs

_ROMFS_HEADER = b"\xd2\xcd\x31"
_ROM_BLOCK_BYTES = 4096  # an ESP32 flash erase block
_ROM_MIN_WRITE_BYTES = 4
_IOCTL_SEGMENTS = 1
_IOCTL_SEGMENT = 2
_IOCTL_WRITE_PREPARE = 3
_IOCTL_WRITE = 4
_IOCTL_WRITE_COMPLETE = 5
_IOCTL_BLOCK_BYTES = 6
_ENODEV = 19
_EINVAL = 22


class RomPartition:
    """One ROMFS partition: the bytes in RAM (a board maps its flash; VfsRom needs a
    buffer) and written through to rom_file, so the image survives a restart."""

    def __init__(self, rom_file, rom_bytes):
        self.data = bytearray(b"\xff" * rom_bytes)
        try:
            with open(rom_file, "rb") as f:
                f.readinto(self.data)
        except OSError:  # no file yet: an erased partition
            with open(rom_file, "wb") as f:
                f.write(self.data)
        # Kept open: the host path is out of reach once FLASH_DIR is mounted at "/".
        self.file = open(rom_file, "r+b")

    def write(self, offset, buf):
        self.data[offset : offset + len(buf)] = buf
        self.file.seek(offset)
        self.file.write(buf)

    def erase(self, offset, n):
        self.write(offset, b"\xff" * n)

    def rom_ioctl(self, op, *args):
        # The semantics of MicroPython's vfs.rom_ioctl, as mpremote uses them.
        if op == _IOCTL_SEGMENTS:
            return 1
        if not args or args[0] != 0:
            return -_ENODEV
        if op == _IOCTL_SEGMENT:
            return memoryview(self.data)
        if op == _IOCTL_WRITE_PREPARE:  # (id, length) or (id, offset, length)
            offset, n = (0, args[1]) if len(args) == 2 else (args[1], args[2])
            self.erase(offset, min(n, len(self.data) - offset))
            return _ROM_MIN_WRITE_BYTES
        if op == _IOCTL_WRITE:
            offset, buf = args[1], args[2]
            if offset < 0 or offset + len(buf) > len(self.data):
                return -_EINVAL
            self.write(offset, buf)
            return 0
        if op == _IOCTL_WRITE_COMPLETE:
            self.file.flush()
            return 0
        if op == _IOCTL_BLOCK_BYTES:
            return _ROM_BLOCK_BYTES
        return -_EINVAL


class FlashDir(vfs.VfsPosix):
    """FLASH_DIR as the unit's filesystem. The port's VfsPosix with a root renames wrong
    (measured: os.rename("/a.new", "/a") asks the host to rename ROOT/a to ROOT/a, both
    paths built in one buffer), and a whole-file replace by rename is how the firmware and
    deploy write safely: rename through an unrooted VfsPosix instead."""

    def __init__(self, root):
        super().__init__(root)
        self.root = root
        self.host = vfs.VfsPosix()

    def rename(self, old, new):
        # Absolute paths are the unit's; relative ones are already relative to the host's
        # cwd, which VfsPosix keeps inside root.
        self.host.rename(*[self.root + p if p.startswith("/") else p for p in (old, new)])


class VfsWithRom:
    """The port's vfs module plus rom_ioctl; `import vfs` finds it in sys.modules."""

    def __init__(self, partition):
        for name in dir(vfs):
            if not name.startswith("__"):
                setattr(self, name, getattr(vfs, name))
        self.rom_ioctl = partition.rom_ioctl


def boot(argv):
    flash_dir, rom_file, rom_bytes = argv[1], argv[2], int(argv[3])
    partition = None
    if rom_bytes:  # 0: a MicroPython build without ROMFS, whose vfs has no rom_ioctl
        partition = RomPartition(rom_file, rom_bytes)
        sys.modules["vfs"] = VfsWithRom(partition)
    vfs.umount("/")
    vfs.mount(FlashDir(flash_dir), "/")
    import os

    os.chdir("/")
    path = ["", ".frozen", "/lib"]
    if partition is not None and bytes(partition.data[:3]) == _ROMFS_HEADER:
        try:
            vfs.mount(vfs.VfsRom(memoryview(partition.data)), "/rom")
            path = ["/rom", "/rom/lib"] + path
        except OSError:  # a torn image: the board starts without it, from its files
            pass
    for i, extra in enumerate(argv[4:]):
        vfs.mount(vfs.VfsPosix(extra), "/sim%d" % i, readonly=True)
        path.append("/sim%d" % i)
    sys.path[:] = path


try:
    boot(sys.argv)
    vfs = sys.modules.get("vfs", vfs)  # the REPL's `vfs` is the one with rom_ioctl too
    unit_boot = "ok"
except Exception as e:  # reported whole to the host at the prompt
    _text = io.StringIO()
    sys.print_exception(e, _text)  # type: ignore  # MicroPython's
    unit_boot = _text.getvalue()
