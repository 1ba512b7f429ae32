"""What goes on a device's flash: the app compiled with mpy-cross, a littlefs v2
image of the vfs partition holding the app and the device's /config.json, and a
full padded flash image (firmware + filesystem) for QEMU and production lines.

The filesystem image is built with littlefs-python using MicroPython's own mount
geometry (tools/partitions.py LFS_GEOMETRY), and carries /provision.json with a
digest of everything in it, so that a re-run can tell, by reading back a few
blocks from the device, whether the device already holds this exact provisioning.
"""
import hashlib
import json
from pathlib import Path

from littlefs import LittleFS, LittleFSError
from littlefs.context import UserContext

from tools import manifest, partitions
from tools.mpy import compile_to, mpy_name

MARKER = "provision.json"
CONFIG = "config.json"
# Scripts MicroPython runs by file name at boot (pyexec_file): they stay source.
SCRIPTS = ("main.py", "boot.py")
# littlefs on-disk version 2.0: readable by every MicroPython with VfsLfs2 (newer
# littlefs-python writes 2.1 by default, which older firmware cannot mount).
DISK_VERSION = 0x00020000


def build_app(cache_dir):
    """{device path: bytes} of the app: every file of firmware/manifest.py compiled
    to .mpy (tools/mpy.py), except the boot scripts. Compiled files are cached by
    source hash in `cache_dir`."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for src, target in manifest.files():
        data = src.read_bytes()
        if target in SCRIPTS:
            files[target] = data
            continue
        out = cache_dir / ("%s-%s.mpy" % (Path(target).stem, hashlib.sha256(data + target.encode()).hexdigest()[:16]))
        if not out.exists():
            compile_to(src, out, target)
        files[mpy_name(target)] = out.read_bytes()
    return files


def digest(app_files, cfg_bytes, lay):
    """What a device's filesystem is provisioned with: app, config and layout."""
    h = hashlib.sha256(b"jifang-image-1\0" + lay.name.encode() + b"\0")
    for path in sorted(app_files):
        h.update(path.encode() + b"\0" + hashlib.sha256(app_files[path]).digest())
    h.update(hashlib.sha256(cfg_bytes).digest())
    return h.hexdigest()


def _new_fs(lay, context=None, **options):
    return LittleFS(context=context, mount=False, block_count=lay.block_count,
                    **partitions.LFS_GEOMETRY, **options)


def build_image(app_files, cfg_bytes, lay, device_id=""):
    """(image bytes, digest): the littlefs image of the whole vfs partition."""
    d = digest(app_files, cfg_bytes, lay)
    files = dict(app_files)
    files[CONFIG] = cfg_bytes
    files[MARKER] = json.dumps({"digest": d, "device_id": device_id, "board": lay.name}).encode()
    # Built in a small filesystem at the start of the partition, then grown to the
    # partition's block count: littlefs starts allocating at a pseudo-random block,
    # and a compact image is what lets a device write only its first ~100 KiB.
    count = min(lay.block_count, _blocks_needed(files))
    while True:
        try:
            return _format_and_fill(files, lay, count), d
        except LittleFSError as e:
            if e.code != LittleFSError.Error.LFS_ERR_NOSPC or count >= lay.block_count:
                raise
            count = min(lay.block_count, count * 3 // 2)


def _blocks_needed(files):
    dirs = {str(Path(p).parent) for p in files} - {"."}
    data = sum(-(-len(b) // partitions.BLOCK_SIZE) for b in files.values())
    return 2 + 2 * len(dirs) + data + 16        # superblock pair, a pair per directory, slack


def _format_and_fill(files, lay, count):
    # Formatted as 2.0; read back without that pin, because a newer MicroPython
    # upgrades the superblock to 2.1 on its first write.
    fs = LittleFS(context=UserContext(lay.vfs_size), mount=False, block_count=count,
                  disk_version=DISK_VERSION, **partitions.LFS_GEOMETRY)
    fs.format()
    fs.mount()
    for path in sorted(files):
        parent = str(Path(path).parent)
        if parent != ".":
            fs.makedirs(parent, exist_ok=True)
        with fs.open(path, "wb") as f:
            f.write(files[path])
    fs.fs_grow(lay.block_count)
    fs.unmount()
    return bytes(fs.context.buffer)


def used_length(image):
    """Bytes up to the end of the last block that holds data (not all 0xFF).
    Writing only these is enough: littlefs finds free blocks by walking its own
    metadata and erases a block before programming it, so whatever an unused block
    holds on the device (an older filesystem) is never read as data. It turns a
    2 MiB write (and erase) into about a hundred KiB."""
    size = partitions.BLOCK_SIZE
    blank = b"\xff" * size
    end = len(image)
    while end > 0 and image[end - size:end] == blank:
        end -= size
    return end


class _DeviceBlocks(UserContext):
    """A read-only littlefs context that fetches 4 KiB blocks from the device on
    demand: mounting and reading /provision.json touches only the metadata blocks
    and one file, a few dozen KiB instead of the whole partition."""

    def __init__(self, read_flash, offset):
        self.read_flash = read_flash
        self.offset = offset
        self.blocks = {}

    def read(self, cfg, block, off, size):
        if block not in self.blocks:
            self.blocks[block] = self.read_flash(self.offset + block * cfg.block_size, cfg.block_size)
        return bytearray(self.blocks[block][off:off + size])

    def prog(self, cfg, block, off, data):
        raise LittleFSError(LittleFSError.Error.LFS_ERR_IO)

    def erase(self, cfg, block):
        raise LittleFSError(LittleFSError.Error.LFS_ERR_IO)

    def sync(self, cfg):
        return 0


def read_marker(read_flash, lay):
    """The provision marker on a device, read through `read_flash(address, size)`;
    None when the partition holds no (readable) jifang filesystem."""
    ctx = _DeviceBlocks(read_flash, lay.vfs_offset)
    fs = _new_fs(lay, ctx)
    try:
        fs.mount()
        with fs.open(MARKER, "rb") as f:
            return json.loads(f.read())
    except (LittleFSError, ValueError, KeyError):
        return None


def read_image(image, lay):
    """Mount an image (bytes) read-only with MicroPython's geometry: a LittleFS."""
    fs = _new_fs(lay, UserContext(buffer=bytearray(image)))
    fs.mount()
    return fs


def full_flash(lay, image, firmware=None):
    """A whole flash chip's contents, padded to its size (esptool merge-bin): the
    firmware at the bootloader offset (when given) and the filesystem at vfs."""
    from esptool import cmds        # esptool's own merge, so the layout is its reading
    parts = [(lay.vfs_offset, image)]
    if firmware is not None:
        parts.insert(0, (lay.firmware_offset, firmware))
    return cmds.merge_bin(parts, lay.chip, output=None, pad_to_size=lay.flash_size_arg)
