"""Which files run on a device.

One list, used by the mpy-cross test, the MicroPython test runner and (later) the
flash tool, so that what is compiled, tested and flashed is the same set of files.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The panel-side subset of protocols/: these modules must stay MicroPython-clean.
PANEL_PROTOCOLS = ("__init__.py", "crc.py", "contactid.py", "dc09.py")


def device_sources():
    """Every .py file that is compiled with mpy-cross and copied to a device."""
    files = [ROOT / "protocols" / name for name in PANEL_PROTOCOLS]
    files += sorted(p for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.exists()]
