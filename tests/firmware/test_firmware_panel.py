"""hil.firmware_panel: the demo's panel interface on the real firmware."""
import asyncio

import pytest

from hil.firmware_panel import FirmwarePanel
from protocols import dc09
from tests.firmware.conftest import ACCOUNT, KEY_TEXT

pytestmark = pytest.mark.slow


def test_report_and_cut_line(receiver, tmp_path):
    p = FirmwarePanel(ACCOUNT, dc09.key_from_text(KEY_TEXT), ("127.0.0.1", receiver.port),
                      workdir=tmp_path / "p")
    p.start()
    try:
        p.report(130, zone=5)
        e = receiver.wait_for(lambda e: e["code"] == 130, 10)
        assert (e["q"], e["partition"], e["zone"]) == (1, 1, 5)
        p.silent = True
        p.report(110, zone=6)
        p.dut.expect(r"EVENT seq=\d+ q=1 code=110", 5)
        assert not [e for e in receiver.events if e["code"] == 110]
        p.silent = False
        receiver.wait_for(lambda e: e["code"] == 110, 10)
        p.dut.expect(r"DELIVERED seq=\d+ code=110", 5)
        assert len(p.acked) >= 3                    # 305 at boot, 130, 110
    finally:
        asyncio.run(p.stop())
