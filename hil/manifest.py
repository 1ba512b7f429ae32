"""Which files run on MicroPython, for the harness and the tests.

What ships to a device is firmware/manifest.py (MicroPython's manifest format, read by
tools/manifest.py); the sim's tree adds the device-side tests' clock
(hil/sim_manifest.py). This module adds what only the tests need on top of those.
"""
from tools import manifest
from tools.manifest import ROOT  # noqa: F401  (the harness and the tests take it from here)

SIM = ROOT / "hil" / "sim_manifest.py"
# MicroPython-clean (their tests run on the unix port too), but no device needs them:
# compile-checked, never shipped, where they would only cost RAM.
SHARED_PROTOCOLS = ("dc09_data.py", "contactid_codes.py", "bus_status.py")


def sim_files():
    """[(source, device path)] of the sim's tree (build/mpy)."""
    return manifest.files(SIM)


def micropython_sources():
    """Every .py file that must compile with mpy-cross: the sim's (what ships and the
    tests' clock), and the shared modules that run on MicroPython without being shipped."""
    return [src for src, _ in sim_files()] + [ROOT / "protocols" / name for name in SHARED_PROTOCOLS]
