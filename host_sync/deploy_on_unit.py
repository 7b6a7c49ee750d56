# Runs ON the unit, not on the laptop: host_sync.deploy sends this file's text over the
# unit's REPL once per connection and then calls these functions by name, reading their
# results back with repr(). MicroPython first (the unit's interpreter): nothing CPython-only.
# Names start with _deploy_ so they stay clear of anything else in the REPL's globals.
import gc
import os
import sys

_EEXIST = 17
_DIR_MODE = 0x4000


def _deploy_sha256(paths):
    """The sha256 (hex) of each file, None where there is no such file."""
    import binascii
    import hashlib

    buf = bytearray(512)
    view = memoryview(buf)
    out = []
    for path in paths:
        try:
            f = open(path, "rb")
        except OSError:
            out.append(None)
            continue
        h = hashlib.sha256()
        n = f.readinto(buf)
        while n:
            h.update(view[:n])
            n = f.readinto(buf)
        f.close()
        out.append(binascii.hexlify(h.digest()).decode())
    return out


def _deploy_mkdirs(dirs):
    """Each directory, parents first; an existing directory is fine, a file in the way not."""
    for d in dirs:
        try:
            os.mkdir(d)
        except OSError as e:
            if e.args[0] != _EEXIST:
                raise
            if not os.stat(d)[0] & _DIR_MODE:
                raise OSError("%s is a file, not a directory" % d) from None


def _deploy_commit(path):
    """path.new (just written whole) replaces path: a cut mid-copy leaves either file whole."""
    try:
        os.rename(path + ".new", path)
    except OSError:  # a filesystem that will not rename over a file (FAT)
        try:
            os.remove(path)
        except OSError:
            pass
        os.rename(path + ".new", path)


def _deploy_rom_partition():
    """(the ROMFS partition's size in bytes, the partition), or (0, None) without one."""
    try:
        import vfs

        dev = vfs.rom_ioctl(2, 0)
    except (ImportError, AttributeError, OSError):
        return 0, None
    if type(dev) is int:  # a negative errno: no partition 0
        return 0, None
    if hasattr(dev, "ioctl"):  # a block device: block count x block size
        return dev.ioctl(4, 0) * dev.ioctl(5, 0), dev
    return len(dev), dev


def _deploy_rom_sha256(n):
    """The sha256 (hex) of the partition's first n bytes: the image as written."""
    import binascii
    import hashlib

    size, dev = _deploy_rom_partition()
    if dev is None or n > size:
        return None
    h = hashlib.sha256()
    view = memoryview(dev)
    for at in range(0, n, 4096):
        h.update(view[at : min(at + 4096, n)])
    return binascii.hexlify(h.digest()).decode()


def _deploy_mount_rom():
    """Mount the partition at /rom, first on the module path, as a board's start-up does."""
    import vfs

    try:
        vfs.umount("/rom")
    except OSError:
        pass
    vfs.mount(vfs.VfsRom(vfs.rom_ioctl(2, 0)), "/rom")
    for i, entry in enumerate(("/rom", "/rom/lib")):
        if entry in sys.path:
            sys.path.remove(entry)
        sys.path.insert(i, entry)


def _deploy_forget(packages):
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            del sys.modules[name]
    gc.collect()


def _deploy_where(module):
    path = getattr(module, "__file__", "")
    if path and not path.startswith("/"):  # found through "" on sys.path: the cwd
        cwd = os.getcwd()
        path = cwd + path if cwd.endswith("/") else cwd + "/" + path
    return path


def _deploy_import(names):
    """Import each module afresh, one at a time with the heap cleared between (a board
    has little), as the unit will at start-up: [(name, the file it came from, None) or
    (name, None, the error)]."""
    packages = set([name.split(".")[0] for name in names])
    out = []
    for name in names:
        _deploy_forget(packages)
        try:
            __import__(name)
            out.append((name, _deploy_where(sys.modules[name]), None))
        except Exception as e:
            out.append((name, None, "%s: %s" % (type(e).__name__, e)))
    _deploy_forget(packages)
    return out


def _deploy_versions():
    """(firmware version, ruleset) as the imported firmware reports them."""
    _deploy_forget(("version", "core"))
    import version

    from core import dosage

    found = (version.FIRMWARE_VERSION, dosage.RULESET)
    _deploy_forget(("version", "core"))
    return found
