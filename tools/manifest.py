"""Reading a MicroPython manifest (firmware/manifest.py: what ships to a device).

    for src, target in files():          # (Path of the source, its path on the device)
        ...

The manifest is MicroPython's own format (the micropython-lib way), so the same
file that lists the .mpy files of this project's images is what MicroPython's build
takes to freeze the app into a firmware. This reader runs the subset the project
uses, with MicroPython's meanings (tools/manifestfile.py in the MicroPython tree):
`module(path, base_path=".")`, `package(path, files=None, base_path=".")` (every
.py below it when `files` is None), `include(path)` (relative to the including
manifest; a directory means its manifest.py), `metadata(...)`. Anything else (a
`require()` of micropython-lib, a C module) is refused: nothing here fetches
packages, and a manifest that needs them is not one this project builds.
"""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVICE = ROOT / "firmware" / "manifest.py"


class ManifestError(Exception):
    pass


class _Reader:
    def __init__(self):
        self.out = {}               # target -> source, in the order listed
        self.visited = set()
        self.dirs = []

    def _here(self, base_path):
        return (self.dirs[-1] / base_path).resolve()

    def _add(self, src, target):
        if not src.is_file():
            raise ManifestError("%s: no such file" % src)
        if target in self.out and self.out[target] != src:
            raise ManifestError("%s listed twice, from %s and %s" % (target, self.out[target], src))
        self.out[target] = src

    def include(self, manifest_path, **options):
        path = self._here(manifest_path)
        if path.is_dir():
            path = path / "manifest.py"
        if path in self.visited:
            return
        self.visited.add(path)
        self.dirs.append(path.parent)
        try:
            exec(compile(path.read_text(), str(path), "exec"), {
                "include": self.include, "module": self.module, "package": self.package,
                "metadata": lambda **kw: None, "require": self._refuse("require"),
                "c_module": self._refuse("c_module")})
        finally:
            self.dirs.pop()

    def module(self, module_path, base_path=".", opt=None):
        if not module_path.endswith(".py"):
            raise ManifestError("module must be a .py file: %s" % module_path)
        self._add(self._here(base_path) / module_path, module_path)

    def package(self, package_path, files=None, base_path=".", opt=None):
        base = self._here(base_path)
        if files is None:
            files = sorted(os.path.relpath(os.path.join(d, f), base / package_path)
                           for d, _, names in os.walk(base / package_path) for f in names
                           if f.endswith(".py"))
        for f in files:
            target = Path(package_path, f).as_posix()
            self._add(base / target, target)

    @staticmethod
    def _refuse(name):
        def refuse(*args, **kwargs):
            raise ManifestError("%s() is not supported here: list the files with module()/package()" % name)
        return refuse


def files(manifest=DEVICE):
    """[(source Path, target path on the device)] of a manifest, in its order."""
    r = _Reader()
    r.dirs.append(Path(manifest).resolve().parent)
    r.include(Path(manifest).resolve())
    return [(src, target) for target, src in r.out.items()]


def device_sources(manifest=DEVICE):
    """The source files that ship (a manifest's, by default the device's)."""
    return [src for src, _ in files(manifest)]
