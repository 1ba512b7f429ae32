"""Runs the device-side test modules (tests/mpy/test_*.py) on the real MicroPython
unix port, with the heap capped as on an ESP32. pytest also collects the same
modules on CPython, so the panel-side codecs are proven on both interpreters."""
from pathlib import Path

import pytest

from hil import micropython

MPY_TESTS = Path(__file__).parent / "mpy"
MODULES = sorted(p.stem for p in MPY_TESTS.glob("test_*.py"))


@pytest.mark.micropython
@pytest.mark.parametrize("module", MODULES)
def test_module_on_micropython(module):
    result = micropython.run(["tests/mpy/run.py", module], extra_path=[MPY_TESTS])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " 0 failed" in output, output
