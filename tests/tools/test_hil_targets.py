"""The board and qemu targets: the same kind of test as on the sim, run when a
board (--board-port) or Espressif's QEMU is there, skipped with the reason when not."""
import pytest

from hil import qemu
from hil.board import JigMissing
from tools import images, partitions, provision

SALT = "5a17"


def panel(receiver_host="127.0.0.1", receiver_port=9):
    return {"role": "panel", "device_id": "hil1", "account": "4001", "salt": SALT,
            "zones": [{"n": 1, "type": "instant", "partition": 1, "wiring": "dry", "input": {"pin": 25}}],
            "users": [{"n": 1, "pin": provision.pin_hash(SALT, "918273"), "partitions": [1]}],
            "reporter": {"receivers": [{"host": receiver_host, "port": receiver_port}], "key_hex": "00" * 16}}


@pytest.mark.slow
def test_board_boots_the_provisioned_app_and_a_jig_trips_a_zone(board_dut):
    dut = board_dut(panel())
    dut.expect(r"READY role=panel")
    try:
        dut.trip(1)
    except JigMissing as e:
        pytest.skip(str(e))
    dut.expect(r"EVENT .*code=130 .*z=1")


@pytest.mark.slow
def test_qemu_boots_a_full_flash_image_from_the_tool(qemu_dut):
    dut = qemu_dut(panel("10.0.2.2"))             # QEMU's user network: the host is 10.0.2.2
    dut.expect(r"READY role=panel", timeout=120)


def test_qemu_command_and_why_it_is_skipped_here(tmp_path, monkeypatch):
    lay = partitions.layout("ESP32_GENERIC_C3")
    full = tmp_path / "full.bin"
    full.write_bytes(images.full_flash(lay, b"\xff" * lay.vfs_size))
    assert qemu.qemu_command("qemu-system-riscv32", "esp32c3", full, forwards=[(18080, 80)]) == [
        "qemu-system-riscv32", "-nographic", "-M", "esp32c3", "-drive", "file=%s,if=mtd,format=raw" % full,
        "-nic", "user,model=open_eth,hostfwd=tcp:127.0.0.1:18080-:80", "-serial", "mon:stdio"]
    half = tmp_path / "half.bin"
    half.write_bytes(b"\xff" * 3_000_000)
    with pytest.raises(ValueError, match="whole flash chip"):
        qemu.qemu_command("qemu-system-riscv32", "esp32c3", half)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "qemu-system-xtensa not installed" in qemu.missing_reason("esp32")
    assert "no QEMU machine for esp32c6" in qemu.missing_reason("esp32c6")
