"""Issue 11 §6: the README's `jifang flash examples/compound.csv --generate-secrets
--dry-run` leaves no secrets in the work tree: they go to the user's data
directory (or --secrets-out), and git ignores *.secrets.json anyway."""
import argparse
import io
import json
import stat
import subprocess

from hil.manifest import ROOT
from tools import flash
from tools.provision_run import default_secrets_path

EXAMPLE = ROOT / "examples" / "compound.csv"


def parse(*argv):
    parser = argparse.ArgumentParser()
    flash.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_readme_dry_run_keeps_secrets_outside_the_work_tree(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    beside = EXAMPLE.with_name("compound.secrets.json")
    assert not beside.exists()
    out = io.StringIO()
    args = parse(str(EXAMPLE), "--generate-secrets", "--dry-run", "--build-dir", str(tmp_path / "build"))
    assert flash.run(args, out=out) == 0
    assert not beside.exists()
    path = default_secrets_path(EXAMPLE)
    assert path.parent == tmp_path / "data" / "jifang" / "secrets" and path.name.startswith("compound-")
    assert len(json.loads(path.read_text())) == 50                     # the 50 devices' keys and codes
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert str(path) in out.getvalue()                                  # the installer is told where
    # a second run finds them again (same keys, devices skipped on a re-run)
    assert default_secrets_path(EXAMPLE) == path


def test_secrets_out_and_gitignore(tmp_path):
    args = parse(str(EXAMPLE), "--secrets-out", str(tmp_path / "site.secrets.json"))
    assert args.secrets == str(tmp_path / "site.secrets.json")
    ignored = subprocess.run(["git", "check-ignore", "-q", "examples/compound.secrets.json"], cwd=ROOT)
    assert ignored.returncode == 0


def test_an_older_runs_file_beside_the_csv_is_still_used(tmp_path):
    csv = tmp_path / "site.csv"
    csv.write_text("device_id\n")
    (tmp_path / "site.secrets.json").write_text("{}")
    assert default_secrets_path(csv) == tmp_path / "site.secrets.json"
