"""Partition layouts and the filesystem image, checked against esptool's and the
MicroPython unix port's own reading of what the tool builds."""
import json
import re
import subprocess
import sys

import pytest
from intelhex import IntelHex

from hil import micropython
from hil.manifest import ROOT
from tools import images, partitions, provision
from tests.tools.standin import firmware

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return images.build_app(tmp_path_factory.mktemp("mpy-cache"))


def test_each_layout_is_the_vfs_row_of_the_micropython_csv_it_cites():
    for lay in partitions.LAYOUTS.values():
        m = re.search(r"partitions-[\w-]+\.csv: vfs, data, fat, (0x[0-9a-fA-F]+), (0x[0-9a-fA-F]+)$", lay.source)
        assert m, lay.name
        assert (int(m.group(1), 16), int(m.group(2), 16)) == (lay.vfs_offset, lay.vfs_size), lay.name
        assert lay.vfs_offset + lay.vfs_size == lay.flash_size, "vfs runs to the end of the flash: " + lay.name
    generic = partitions.layout("ESP32_GENERIC")
    assert (generic.vfs_offset, generic.block_count, generic.firmware_offset) == (0x200000, 512, 0x1000)
    assert partitions.layout("ESP32_GENERIC-OTA").vfs_offset == 0x310000
    assert partitions.layout("ESP32_GENERIC_S3").firmware_offset == 0x0
    assert partitions.layout("ESP32_GENERIC_C3").firmware_offset == 0x0


def test_firmware_whose_partition_table_disagrees_is_refused(tmp_path):
    lay = partitions.layout("ESP32_GENERIC")
    assert partitions.check_firmware(firmware(lay, tmp_path=tmp_path), lay).offset == 0x200000
    ota = firmware(partitions.layout("ESP32_GENERIC-OTA"), tmp_path=tmp_path)
    with pytest.raises(ValueError, match=r"vfs partition is 0x310000\+0xf0000 but board ESP32_GENERIC says 0x200000"):
        partitions.check_firmware(ota, lay)
    with pytest.raises(ValueError, match="no partition table"):
        partitions.check_firmware(b"\xff" * 0x9000, lay)


def test_app_is_mpy_except_the_boot_scripts(app):
    assert "main.py" in app and "main.mpy" not in app
    assert "core/app.mpy" in app and "protocols/dc09.mpy" in app
    assert all(name.endswith(".mpy") for name in app if name not in ("main.py", "boot.py"))
    assert all(data[:1] == b"M" for name, data in app.items() if name.endswith(".mpy"))   # .mpy magic


def _config(spec_row=None):
    spec = provision.Spec(row=2, device_id="b1-u1-0301", type="panel", account="2001", key_hex="00" * 16,
                          receivers=[("127.0.0.1", 9)], zones=[{"n": 1, "type": "panel", "wiring": "dry", "partition": 1}])
    return provision.config_bytes(provision.device_config(spec, "5a17"))


@pytest.mark.parametrize("board", ["ESP32_GENERIC", "ESP32_GENERIC_S3"])
def test_full_flash_image_as_esptool_reads_it(board, app, tmp_path):
    """merge-bin puts firmware and filesystem where the layout says; image-info reads
    the firmware's header; littlefs-python mounts the vfs slice and finds the app."""
    from esptool import cmds
    lay = partitions.layout(board)
    image, digest = images.build_image(app, _config(), lay, "b1-u1-0301")
    assert len(image) == lay.vfs_size
    fw = firmware(lay, tmp_path=tmp_path)
    full = images.full_flash(lay, image, fw)
    assert len(full) == lay.flash_size
    if board == "ESP32_GENERIC":     # (the S3's 6 MiB as Intel HEX takes 10 s to parse)
        # esptool's own merge as Intel HEX: the segments are exactly firmware and vfs
        hexfile = tmp_path / "full.hex"
        cmds.merge_bin([(lay.firmware_offset, fw), (lay.vfs_offset, image)], lay.chip, output=str(hexfile), format="hex")
        segments = IntelHex(str(hexfile)).segments()
        assert segments == [(lay.firmware_offset, lay.firmware_offset + len(fw)),
                            (lay.vfs_offset, lay.vfs_offset + lay.vfs_size)]
    # esptool image-info on the full image at the bootloader offset: the chip and flash size
    head = tmp_path / "head.bin"
    head.write_bytes(full[lay.firmware_offset:lay.firmware_offset + len(fw)])
    info = subprocess.run([sys.executable, "-m", "esptool", "image-info", str(head)], capture_output=True, text=True)
    text = info.stdout
    assert info.returncode == 0, info.stderr
    assert "Detected image type: %s" % lay.chip.upper().replace("ESP32S3", "ESP32-S3") in text
    assert "Flash size: %s" % lay.flash_size_arg in text
    # the firmware's partition table inside the full image says vfs where we wrote it
    table = partitions.parse_partition_table(full[0x8000:0x8C00])
    assert partitions.vfs_partition(table).offset == lay.vfs_offset
    fs = images.read_image(full[lay.vfs_offset:lay.vfs_offset + lay.vfs_size], lay)
    assert json.loads(fs.open("config.json", "r").read())["account"] == "2001"
    assert json.loads(fs.open("provision.json", "r").read())["digest"] == digest
    assert "app.mpy" in fs.listdir("core")


def test_image_is_reproducible_and_the_marker_reads_back_in_a_few_blocks(app):
    lay = partitions.layout("ESP32_GENERIC")
    a, da = images.build_image(app, _config(), lay)
    b, db = images.build_image(app, _config(), lay)
    assert a == b and da == db
    reads = []

    def read_flash(address, size):
        reads.append(address)
        return a[address - lay.vfs_offset:address - lay.vfs_offset + size]
    assert images.read_marker(read_flash, lay)["digest"] == da
    assert len(reads) < 32                      # < 128 KiB of the 2 MiB partition
    assert images.read_marker(lambda addr, size: b"\xff" * size, lay) is None


def test_micropython_vfslfs2_mounts_the_image_with_its_own_geometry(app, tmp_path):
    """The unix port's VfsLfs2 (MicroPython's littlefs and defaults) reads the image,
    writes to it, and littlefs-python reads that write back."""
    lay = partitions.layout("ESP32_GENERIC")
    image, _ = images.build_image(app, _config(), lay)
    flash = tmp_path / "flash.bin"
    flash.write_bytes(image)
    script = tmp_path / "mount.py"
    script.write_text(
        "import vfs, os, json\n"
        "exec(open(%r).read().split('def merge')[0])\n"         # FileBlockDevice from hil/lfs_boot.py
        "fs = vfs.VfsLfs2(FileBlockDevice(%r))\n"
        "vfs.mount(fs, '/flash')\n"
        "print(json.load(open('/flash/config.json'))['account'], sorted(os.listdir('/flash')))\n"
        "with open('/flash/written-on-device.txt', 'w') as f: f.write('ok')\n"
        "print(os.statvfs('/flash')[0], os.statvfs('/flash')[2])\n"
        % (str(ROOT / "hil" / "lfs_boot.py"), str(flash)))
    r = micropython.run([str(script)], timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    first, second = r.stdout.splitlines()[:2]
    assert first.startswith("2001 ") and "'config.json'" in first and "'core'" in first
    assert second == "4096 512"                  # block size and count as MicroPython sees them
    fs = images.read_image(flash.read_bytes(), lay)
    assert fs.open("written-on-device.txt", "r").read() == "ok"
