"""One mpy-cross builder (tools/mpy.py): the sim's build/mpy tree (hil/sim.py) and the
flash image's app (tools/images.py) hold the same bytes for every device module, under
the device path, which is also the source name recorded in each .mpy."""
from hil.manifest import device_sources
from hil.sim import build_mpy
from tools import images
from tools.mpy import device_path


def test_sim_and_image_compile_the_same_bytes(tmp_path):
    sim = build_mpy(tmp_path / "sim")
    app = images.build_app(tmp_path / "cache")
    compiled = [device_path(s).with_suffix(".mpy").as_posix() for s in device_sources()
                if str(device_path(s)) not in images.SCRIPTS]
    assert compiled and sorted(compiled) == sorted(p for p in app if p.endswith(".mpy"))
    for name in compiled:
        data = (sim / name).read_bytes()
        assert data == app[name], name
        assert name.encode() in data          # -s: the device path, not this checkout's
