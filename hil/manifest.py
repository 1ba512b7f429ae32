"""Which files run on a device.

One list, used by the mpy-cross test, the MicroPython test runner and (later) the
flash tool, so that what is compiled, tested and flashed is the same set of files.
"""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The panel-side subset of protocols/: these modules must stay MicroPython-clean
# and are copied to every device.
PANEL_PROTOCOLS = ("__init__.py", "crc.py", "contactid_table.py", "contactid.py", "dc09_link.py", "dc09.py", "bus.py")
# Also MicroPython-clean (their tests run on the unix port too), but no panel needs
# them, so they are compile-checked and not flashed: they would only cost RAM.
SHARED_PROTOCOLS = ("dc09_data.py", "contactid_codes.py", "bus_status.py")


def device_sources():
    """Every .py file that is compiled with mpy-cross and copied to a device."""
    files = [ROOT / "protocols" / name for name in PANEL_PROTOCOLS]
    files += sorted(p for p in (ROOT / "firmware").rglob("*.py") if "__pycache__" not in p.parts)
    return [f for f in files if f.exists()]


def micropython_sources():
    """Every .py file that must compile with mpy-cross: the device's, and the shared
    modules that run on MicroPython without being flashed."""
    return device_sources() + [ROOT / "protocols" / name for name in SHARED_PROTOCOLS]
