"""pytest options and fixtures for the hardware targets (load it from the root
conftest: `pytest_plugins = ["hil.pytest_plugin"]`).

    pytest --board-port /dev/ttyUSB0 [--board ESP32_GENERIC] [--jig-port /dev/ttyACM0]
    pytest --qemu-firmware ESP32_GENERIC_C3-QEMU.bin [--qemu-bin PATH]

Each option can also come from the environment (JIFANG_BOARD_PORT, JIFANG_BOARD,
JIFANG_JIG_PORT, JIFANG_QEMU_FIRMWARE, JIFANG_QEMU_BIN), for CI runners with a
board attached. Without them, the tests that need a board or QEMU are skipped
with the reason and what to pass.
"""
import os

import pytest

OPTIONS = {
    # option: (environment variable, help)
    "--board-port": ("JIFANG_BOARD_PORT", "serial port of an ESP32 to run the board tests on"),
    "--board": ("JIFANG_BOARD", "its layout (tools/partitions.py), default ESP32_GENERIC"),
    "--jig-port": ("JIFANG_JIG_PORT", "serial port of the test jig driving the board's inputs"),
    "--qemu-firmware": ("JIFANG_QEMU_FIRMWARE", "MicroPython firmware .bin (open_eth build) for the qemu tests"),
    "--qemu-bin": ("JIFANG_QEMU_BIN", "QEMU binary, when not qemu-system-xtensa/riscv32 on PATH"),
}


def pytest_addoption(parser):
    group = parser.getgroup("jifang-hil", "jifang hardware-in-the-loop targets")
    for name, (env, help_text) in OPTIONS.items():
        group.addoption(name, default=None, help="%s (env %s)" % (help_text, env))


def option(config, name):
    """The option's value, else its environment variable (works also when this
    module's options are not registered, e.g. fixtures imported by a conftest)."""
    value = config.getoption(name, default=None)
    return value or os.environ.get(OPTIONS[name][0]) or None


@pytest.fixture
def board_dut(request, tmp_path):
    """board_dut(config) -> a started BoardDut on --board-port; skipped without one."""
    from hil.board import BoardDut, SerialJig
    port = option(request.config, "--board-port")
    if not port:
        pytest.skip("no board: this test needs an ESP32 on a serial port, e.g. --board-port /dev/ttyUSB0")
    if not os.path.exists(port):
        pytest.skip("no board: %s does not exist (is the board plugged in?)" % port)
    duts = []

    def make(config, start=True):
        jig_port = option(request.config, "--jig-port")
        dut = BoardDut(port, config, tmp_path / "board", board=option(request.config, "--board") or "ESP32_GENERIC",
                       jig=SerialJig(jig_port) if jig_port else None)
        duts.append(dut)
        return dut.start() if start else dut

    yield make
    for dut in duts:
        dut.stop()


@pytest.fixture
def qemu_dut(request, tmp_path):
    """qemu_dut(config, board="ESP32_GENERIC_C3") -> a started QemuDut booting a full
    flash image (firmware + this config) built by the flash tool's code; skipped
    when QEMU or the firmware is missing."""
    from hil import qemu
    from tools import images, partitions, provision
    binary = option(request.config, "--qemu-bin")
    firmware = option(request.config, "--qemu-firmware")
    duts = []

    def make(config, board="ESP32_GENERIC_C3", start=True, forwards=()):
        lay = partitions.layout(board)
        reason = qemu.missing_reason(lay.chip, binary)
        if reason:
            pytest.skip(reason)
        if not firmware:
            pytest.skip("no MicroPython firmware for QEMU: pass --qemu-firmware ESP32_GENERIC_C3-QEMU.bin (docs/hil.md)")
        fw = open(firmware, "rb").read()
        partitions.check_firmware(fw, lay)
        cfg = dict(config, target="esp32")
        app = images.build_app(tmp_path / "mpy-cache")
        image, _ = images.build_image(app, provision.config_bytes(cfg), lay, "qemu")
        full = tmp_path / "full.bin"
        full.write_bytes(images.full_flash(lay, image, fw))
        dut = qemu.QemuDut(full, lay.chip, tmp_path / ("qemu%d" % len(duts)), binary, forwards)
        duts.append(dut)
        return dut.start() if start else dut

    yield make
    for dut in duts:
        dut.stop()
