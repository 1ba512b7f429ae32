"""One mpy-cross builder (tools/mpy.py) and one list of what ships (firmware/manifest.py):
the sim's build/mpy tree (hil/sim.py) and the flash image's app (tools/images.py) hold
the same bytes for every device module, under the device path, which is also the
source name recorded in each .mpy."""
from hil.sim import build_mpy
from tools import images, manifest
from tools.mpy import mpy_name


def test_sim_and_image_compile_the_same_bytes(tmp_path):
    sim = build_mpy(tmp_path / "sim")
    app = images.build_app(tmp_path / "cache")
    compiled = [mpy_name(t) for _, t in manifest.files() if t not in images.SCRIPTS]
    assert compiled and sorted(compiled) == sorted(p for p in app if p.endswith(".mpy"))
    for name in compiled:
        data = (sim / name).read_bytes()
        assert data == app[name], name
        assert name.encode() in data          # -s: the device path, not this checkout's


def test_the_manifest_lists_what_ships(tmp_path):
    """firmware/manifest.py, read with MicroPython's meanings: firmware/'s contents at
    the root, protocols/ as a package; the CPython stand-ins and the tests' clock are
    not shipped, and the sim's tree is what ships plus that clock."""
    ships = dict((t, s) for s, t in manifest.files())
    assert "main.py" in ships and "core/app.py" in ships and "protocols/dc09_link.py" in ships
    assert ships["protocols/crc.py"] == manifest.ROOT / "protocols" / "crc.py"
    assert ships["core/app.py"] == manifest.ROOT / "firmware" / "core" / "app.py"
    assert "core/cpython.py" not in ships and "core/fakeclock.py" not in ships
    assert "protocols/dc09_data.py" not in ships and "protocols/aes_cryptography.py" not in ships
    from hil.manifest import sim_files
    assert sorted(t for _, t in sim_files()) == sorted(list(ships) + ["core/fakeclock.py"])
    # every firmware module is either shipped or deliberately left out
    left_out = {"core/cpython.py", "core/fakeclock.py", "manifest.py"}
    every = {p.relative_to(manifest.ROOT / "firmware").as_posix()
             for p in (manifest.ROOT / "firmware").rglob("*.py")}
    assert every - left_out == {t for t in ships if not t.startswith("protocols/")}


def test_manifest_reader_follows_micropython(tmp_path):
    """package() without files takes every .py below it; include() is relative to the
    including manifest; a target listed twice from two sources is refused."""
    (tmp_path / "lib" / "pkg" / "sub").mkdir(parents=True)
    for f in ("pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "pkg/notes.txt", "top.py"):
        (tmp_path / "lib" / f).write_text("x = 1\n")
    (tmp_path / "lib" / "manifest.py").write_text('package("pkg")\nmodule("top.py")\n')
    (tmp_path / "board.py").write_text('metadata(version="1")\ninclude("lib")\nmodule("pkg/a.py", base_path="lib")\n')
    got = manifest.files(tmp_path / "board.py")
    assert [t for _, t in got] == ["pkg/__init__.py", "pkg/a.py", "pkg/sub/b.py", "top.py"]
    assert got[2][0] == tmp_path / "lib" / "pkg" / "sub" / "b.py"
    (tmp_path / "twice.py").write_text('include("lib")\nmodule("top.py")\n')
    (tmp_path / "top.py").write_text("x = 3\n")
    import pytest
    with pytest.raises(manifest.ManifestError):
        manifest.files(tmp_path / "twice.py")
    (tmp_path / "req.py").write_text('require("aioble")\n')
    with pytest.raises(manifest.ManifestError):
        manifest.files(tmp_path / "req.py")
