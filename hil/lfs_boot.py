# Boot the firmware from a flash image, on the MicroPython unix port, the way the
# ESP32 port boots: mount the littlefs vfs partition at "/", run boot.py if there
# is one, then main.py. This file runs ON MicroPython (it is not a CPython module):
#
#   MICROPYPATH=.frozen micropython -X heapsize=128K hil/lfs_boot.py FLASH OVERRIDES.json
#
# FLASH is the filesystem image `jifang flash --out` wrote (littlefs v2, whole vfs
# partition), or a copy of it: the device's writes (event queue, markers) go into
# that file as they would go into the flash, and survive a kill -9. OVERRIDES is a
# host JSON file merged over the image's /config.json and written to /sim.json on
# the image (the image's /config.json is left as the tool built it): the sim
# needs "target": "sim" and a control port where the board has "esp32" and pins.
import gc
import sys
import os
import json
import vfs

BLOCK_SIZE = 4096          # as ports/esp32/esp32_partition.c: NATIVE_BLOCK_SIZE_BYTES
SIM_CONFIG = "/sim.json"


class FileBlockDevice:
    """The extended block protocol vfs.VfsLfs2 uses (readblocks/writeblocks with an
    offset, ioctl 4/5/6), backed by a file, like esp32.Partition backed by flash."""

    def __init__(self, path, block_size=BLOCK_SIZE):
        self.f = open(path, "r+b")
        self.block_size = block_size
        self.f.seek(0, 2)
        self.count = self.f.tell() // block_size

    def readblocks(self, n, buf, off=0):
        self.f.seek(n * self.block_size + off)
        self.f.readinto(buf)

    def writeblocks(self, n, buf, off=None):
        # off=None: erase-then-write of whole blocks (the simple protocol); littlefs
        # erases through ioctl(6) first and always passes an offset.
        self.f.seek(n * self.block_size + (off or 0))
        self.f.write(buf)
        self.f.flush()

    def ioctl(self, op, arg):
        if op == 4:                     # MP_BLOCKDEV_IOCTL_BLOCK_COUNT
            return self.count
        if op == 5:                     # MP_BLOCKDEV_IOCTL_BLOCK_SIZE
            return self.block_size
        if op == 6:                     # MP_BLOCKDEV_IOCTL_BLOCK_ERASE: flash erases to 0xFF
            self.f.seek(arg * self.block_size)
            self.f.write(b"\xff" * self.block_size)
            return 0
        if op == 3:                     # MP_BLOCKDEV_IOCTL_SYNC
            self.f.flush()
        return 0


def merge(base, over):
    for k in over:
        if isinstance(over[k], dict) and isinstance(base.get(k), dict):
            merge(base[k], over[k])
        else:
            base[k] = over[k]
    return base


def mount(flash, overrides_path):
    """Mount the image at "/" and write /sim.json. Nothing of it stays on the heap
    but the block device: with this module's own code, about 4 KB less heap for
    the app than on a board (measured with gc.mem_alloc() before main.py)."""
    with open(overrides_path) as f:              # read from the host before "/" changes
        overrides = json.load(f)
    bdev = FileBlockDevice(flash)                # opened while the host filesystem is "/"
    vfs.umount("/")
    vfs.mount(vfs.VfsLfs2(bdev), "/")            # readsize/progsize/lookahead: MicroPython's defaults
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]        # the ESP32 port's sys.path
    with open("/config.json") as f:
        cfg = json.load(f)
    with open(SIM_CONFIG, "w") as f:
        json.dump(merge(cfg, overrides), f)


def run_script(name):
    try:
        os.stat(name)
    except OSError:
        return
    with open(name) as f:
        source = f.read()
    code = compile(source, name, "exec")
    del source
    gc.collect()
    exec(code, {"__name__": "__main__"})


mount(sys.argv[1], sys.argv[2])
sys.argv[:] = ["main.py", SIM_CONFIG]            # firmware/main.py takes a *.json argument
gc.collect()
run_script("boot.py")
run_script("main.py")
