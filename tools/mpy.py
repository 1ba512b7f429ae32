"""The one mpy-cross builder: a device source file compiled to .mpy, under the name
and at the path it has on the device. Used for the flash image (tools/images.py
build_app: cached by content) and for the sim (hil/sim.py build_mpy: a build/mpy
tree laid out as the device's filesystem, rebuilt when a source is newer)."""
import os
import subprocess
from pathlib import Path

from hil import micropython
from hil.manifest import ROOT


def device_path(src):
    """Where a source file lives on the device: protocols/ as a package, the
    contents of firmware/ at the root ("firmware/core/app.py" -> "core/app.py")."""
    rel = Path(src).relative_to(ROOT)
    return Path(*rel.parts[1:]) if rel.parts[0] == "firmware" else rel


def compile_to(src, out):
    """Compile `src` with mpy-cross into `out`, whole or not at all (a temporary file
    per process, then a rename: several pytest processes may build at once). Raises
    RuntimeError with mpy-cross's message.

    -s: the source name recorded in the .mpy is the path the device imports it from
    ("core/app.mpy"), not this checkout's: the .mpy, and an image, do not depend on
    where they were built, and on the device the recorded name and the module's
    __file__ are one interned string in RAM instead of two."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name("%s.%d.tmp" % (out.name, os.getpid()))
    name = device_path(src).with_suffix(".mpy").as_posix()
    r = subprocess.run([micropython.mpy_cross_binary(), "-s", name, "-o", str(tmp), str(src)],
                       capture_output=True, text=True)
    if r.returncode:
        tmp.unlink(missing_ok=True)
        raise RuntimeError("mpy-cross %s: %s" % (Path(src).relative_to(ROOT), r.stderr.strip()))
    os.replace(tmp, out)
    return out
