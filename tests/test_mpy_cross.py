"""Every module that runs on a device, or is shared with MicroPython, compiles with mpy-cross."""
import subprocess

import pytest

from hil import micropython
from hil.manifest import ROOT, micropython_sources


@pytest.mark.parametrize("source", micropython_sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_compiles_with_mpy_cross(source, tmp_path):
    out = tmp_path / (source.stem + ".mpy")
    result = subprocess.run([micropython.mpy_cross_binary(), "-o", str(out), str(source)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
