"""Launch hil/lfs_boot.py: the firmware on the unix port, booted from the very
filesystem image the flash tool built (CPython side).

    cmd, env = boot_command(image, workdir, control_port)
    subprocess.Popen(cmd, env=env, cwd=workdir, stdout=PIPE)

The image is copied once to `workdir/flash.bin` (the device's flash: its writes
land there and survive a kill -9 and a restart); the image itself stays as built.
Part of the harness (hil/), not the tools: the tools build the image, this boots it.
"""
import json
import os
import shutil
from pathlib import Path

from hil import micropython
from tools.manifest import ROOT

LFS_BOOT = ROOT / "hil" / "lfs_boot.py"


def sim_overrides(control_port, **extra):
    """What the sim changes in the image's config: the HAL target (the image says
    esp32) and the control socket port; the rest is the device's own config."""
    over = {"target": "sim", "sim": {"control_port": control_port}}
    over.update(extra)
    return over


def boot_command(image, workdir, control_port, heap=micropython.DEFAULT_HEAP, **extra):
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    flash = workdir / "flash.bin"
    if not flash.exists():                      # first power-on: flash the image
        shutil.copyfile(image, flash)
    overrides = workdir / "sim-overrides.json"
    overrides.write_text(json.dumps(sim_overrides(control_port, **extra)))
    env = dict(os.environ)
    env["MICROPYPATH"] = ".frozen"              # only frozen asyncio: the app comes from the image
    cmd = [micropython.micropython_binary(), "-X", "heapsize=" + heap, str(LFS_BOOT), str(flash), str(overrides)]
    return cmd, env
