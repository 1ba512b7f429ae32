"""`jifang flash` end to end on fake devices (in-memory flash that can stop
answering) and on real esptool against ports that are missing or silent."""
import argparse
import io
import os
import re
import shutil
import subprocess
import sys

import pytest

from gateway import cli
from hil.manifest import ROOT
from tools import flash, images, partitions
from tests.tools.standin import FakeDevice, FakeLink, firmware

EXAMPLE = ROOT / "examples" / "compound.csv"
HEADER = "device_id,type,account,port,mac,board,zones,receivers,users\n"


def args_for(csv, tmp_path, *extra):
    parser = argparse.ArgumentParser()
    flash.add_arguments(parser)
    return parser.parse_args([str(csv), "--secrets", str(tmp_path / "secrets.json"), "--build-dir", str(tmp_path / "build"),
                              "--logs", str(tmp_path / "logs"), "--registry", str(tmp_path / "registry.toml")]
                             + list(extra))


def run(csv, tmp_path, *extra, devices=None):
    FakeLink.devices = devices or {}
    out = io.StringIO()
    code = flash.run(args_for(csv, tmp_path, *extra), link_factory=FakeLink, out=out)
    return code, out.getvalue()


def summary(text):
    """device -> (status, reason) from the summary table."""
    table = text.split("\n\n")[-2] if "\n\n" in text else text
    rows = {}
    for line in table.splitlines()[2:]:
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=5)
        rows[parts[0]] = (parts[3], parts[5] if len(parts) > 5 else "")
    return rows


def site_csv(tmp_path, rows):
    path = tmp_path / "site.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def row(n, port, mac="", board="", users=""):
    return "d%d,panel,%d,%s,%s,%s,1:instant:seol,127.0.0.1:7000,%s\n" % (n, 3000 + n, port, mac, board, users)


def test_the_50_device_compound_builds_images_and_registry(tmp_path):
    out_dir = tmp_path / "out"
    code, text = run(EXAMPLE, tmp_path, "--out", str(out_dir), "--generate-secrets")
    assert code == 0, text
    assert "50 built" in text
    imgs = sorted(out_dir.glob("*.img"))
    assert len(imgs) == 50
    sizes = {p.stat().st_size for p in imgs}
    assert sizes == {0x200000, 0x600000}          # ESP32_GENERIC panels and C3 gates; S3 gates
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in imgs)
    registry = (tmp_path / "registry.toml").read_text()
    assert registry.count("[[devices]]") == 50
    s3 = images.read_image((out_dir / "b1-gate.img").read_bytes(), partitions.layout("ESP32_GENERIC_S3"))
    assert '"role":"intercom"' in s3.open("config.json", "r").read()


def test_dry_run_prints_the_commands_and_writes_nothing(tmp_path):
    csv = site_csv(tmp_path, [row(1, "/dev/ttyUSB0"), row(2, "/dev/ttyUSB1", board="ESP32_GENERIC_S3")])
    dev = FakeDevice()
    code, text = run(csv, tmp_path, "--dry-run", "--generate-secrets", devices={"/dev/ttyUSB0": dev})
    assert code == 0, text
    assert dev.ops == []
    cmds = re.findall(r"\$ (esptool .*)", text)
    build = tmp_path / "build"
    assert cmds == [
        "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash 0x202000 %s/d1.fs-tail.bin" % build,
        "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 write-flash 0x200000 %s/d1.fs-head.bin" % build,
        "esptool --chip esp32s3 --port /dev/ttyUSB1 --baud 460800 write-flash 0x202000 %s/d2.fs-tail.bin" % build,
        "esptool --chip esp32s3 --port /dev/ttyUSB1 --baud 460800 write-flash 0x200000 %s/d2.fs-head.bin" % build,
    ]


def test_planned_command_lines_are_accepted_by_esptool_itself(tmp_path):
    """esptool v5 parses our command lines (spelling, argument order): it gets as far
    as opening the port, which does not exist here."""
    lay = partitions.layout("ESP32_GENERIC")
    fw, head, tail = (tmp_path / n for n in ("fw.bin", "head.bin", "tail.bin"))
    for p in (fw, head, tail):
        p.write_bytes(b"\xff" * 16)
    for argv in flash.write_plan(lay, "/dev/ttyNOPE", 460800, head, tail, fw):
        r = subprocess.run([sys.executable, "-m"] + argv, capture_output=True, text=True, timeout=60)
        output = r.stdout + r.stderr
        assert "Could not open /dev/ttyNOPE" in output and "Usage:" not in output, (argv, output)


def test_writes_what_it_planned_verifies_and_skips_on_rerun(tmp_path):
    lay = partitions.layout("ESP32_GENERIC")
    csv = site_csv(tmp_path, [row(1, "/dev/ttyUSB0", mac="24:0a:c4:00:00:01", users="1:user:918273"),
                              row(2, "/dev/ttyUSB1")])
    devs = {"/dev/ttyUSB0": FakeDevice(), "/dev/ttyUSB1": FakeDevice(mac="24:0a:c4:00:00:02")}
    code, text = run(csv, tmp_path, "--generate-secrets", devices=devs)
    assert code == 0, text
    assert summary(text) == {"d1": ("done", ""), "d2": ("done", "")}
    build = tmp_path / "build"
    for name, dev in (("d1", devs["/dev/ttyUSB0"]), ("d2", devs["/dev/ttyUSB1"])):
        writes = [op for op in dev.ops if op[0] == "write"]
        planned = [(int(a, 16), p) for a, p in re.findall(r"run: esptool .*write-flash (0x[0-9a-f]+) (\S+)",
                                                            (tmp_path / "logs" / ("%s.log" % name)).read_text())]
        assert [(addr, digest) for _, addr, digest in writes] == [
            (addr, images.hashlib.sha256(open(path, "rb").read()).hexdigest()) for addr, path in planned]
        assert [addr for _, addr, _ in writes] == [0x202000, 0x200000]          # superblock last
        image = (build / ("%s.img" % name)).read_bytes()
        used = images.used_length(image)
        # Only the used blocks (the app is ~60 of the partition's 500+; where littlefs
        # puts the last one moves with the file count, so the bound is a fraction).
        assert 0x2000 < used <= len(image) // 4 and image[used:] == b"\xff" * (len(image) - used)
        assert dev.flash[0x200000:0x200000 + used] == image[:used]             # only the used blocks
        assert dev.resets == 1
    # second run: read back, same provisioning, nothing written
    before = [len(d.ops) for d in devs.values()]
    code, text = run(csv, tmp_path, devices=devs)
    assert code == 0 and summary(text)["d1"] == ("skipped", "already provisioned (same config and app)")
    assert all(op[0] == "read" for d, n in zip(devs.values(), before) for op in d.ops[n:])
    # the secrets were never shown: not on the console, not in the logs
    secrets = (tmp_path / "secrets.json").read_text()
    keys = re.findall(r'"key_hex": "([0-9A-F]{32})"', secrets) + re.findall(r'"installer_pin": "(\d{6})"', secrets)
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*"))
    assert len(keys) == 4
    for secret in keys + ["918273"]:
        assert secret not in text and secret not in logs


def test_failures_are_per_device_and_nothing_half_written_is_done(tmp_path):
    csv = site_csv(tmp_path, [
        row(1, "/dev/ttyUSB0"),                                   # good
        row(2, "/dev/ttyUSB1"),                                   # stops answering after 96 KiB
        row(3, ""),                                               # no port in the CSV
        row(4, "/dev/ttyUSB9"),                                   # port not there
        row(5, "/dev/ttyUSB4", mac="24:0a:c4:99:99:99"),          # another board on that port
        row(6, "/dev/ttyUSB5", board="ESP32_GENERIC_S3"),         # an ESP32 where an S3 should be
        "d7,panel,ZZZ,/dev/ttyUSB6,,,,127.0.0.1:7000,\n",         # broken row
    ])
    devs = {"/dev/ttyUSB0": FakeDevice(), "/dev/ttyUSB1": FakeDevice(answers_for=96 << 10),
            "/dev/ttyUSB4": FakeDevice(), "/dev/ttyUSB5": FakeDevice(flash_size=8 << 20)}
    code, text = run(csv, tmp_path, "--generate-secrets", devices=devs)
    assert code == 1
    got = summary(text)
    assert got["d1"] == ("done", "")
    assert got["d2"][0] == "failed" and "stopped answering" in got["d2"][1]
    assert got["d3"] == ("failed", "no serial port: fill in the port column (e.g. /dev/ttyUSB0) for row 4")
    assert got["d4"][0] == "failed" and "could not open port /dev/ttyUSB9" in got["d4"][1]
    assert got["d5"][0] == "failed" and "MAC on /dev/ttyUSB4 is 24:0a:c4:00:00:01, the CSV says 24:0a:c4:99:99:99" in got["d5"][1]
    assert got["d6"][0] == "failed" and "chip on /dev/ttyUSB5 is esp32 but board ESP32_GENERIC_S3 is esp32s3" in got["d6"][1]
    assert got["(row 8)"][0] == "invalid" and "column account = 'ZZZ'" in got["(row 8)"][1]
    assert "1 done, 5 failed, 1 invalid" in text
    # the device that stopped mid-write was never reset into a half image, and
    # its flash does not claim this provisioning: a re-run writes it again
    half = devs["/dev/ttyUSB1"]
    assert half.resets == 0
    lay = partitions.layout("ESP32_GENERIC")
    assert images.read_marker(lambda a, n: bytes(half.flash[a:a + n]), lay) is None
    half.answers_for = None
    code, text = run(csv, tmp_path, devices=devs)
    assert summary(text)["d2"] == ("done", "") and summary(text)["d1"][0] == "skipped"
    assert "FAILED: OSError: Timed out waiting for packet header" in (tmp_path / "logs" / "d2.log").read_text()


def test_firmware_is_checked_erased_and_written_first(tmp_path):
    lay = partitions.layout("ESP32_GENERIC")
    fw = tmp_path / "ESP32_GENERIC.bin"
    fw.write_bytes(firmware(lay, tmp_path=tmp_path))
    csv = site_csv(tmp_path, [row(1, "/dev/ttyUSB0"), row(2, "/dev/ttyUSB1", board="ESP32_GENERIC-OTA")])
    devs = {"/dev/ttyUSB0": FakeDevice(), "/dev/ttyUSB1": FakeDevice()}
    code, text = run(csv, tmp_path, "--generate-secrets", "--firmware", str(fw), devices=devs)
    got = summary(text)
    assert got["d1"] == ("done", "")
    assert got["d2"][0] == "failed" and "vfs partition is 0x200000+0x200000 but board ESP32_GENERIC-OTA" in got["d2"][1]
    ops = devs["/dev/ttyUSB0"].ops
    assert [op[:2] for op in ops if op[0] != "read"] == [("erase",), ("write", 0x1000), ("write", 0x202000), ("write", 0x200000)]
    assert devs["/dev/ttyUSB1"].ops == []
    assert bytes(devs["/dev/ttyUSB0"].flash[0x1000:0x1000 + fw.stat().st_size]) == fw.read_bytes()


@pytest.mark.parametrize("kind", ["missing", "silent"])
def test_real_esptool_on_a_missing_or_silent_port_fails_that_device(tmp_path, kind):
    """The real EsptoolLink: a path that is not there, and a pty nobody answers on."""
    if kind == "silent":
        master, slave = os.openpty()
        port = os.ttyname(slave)
    else:
        port = "/dev/ttyNOPE0"
    csv = site_csv(tmp_path, [row(1, port)])
    out = io.StringIO()
    code = flash.run(args_for(csv, tmp_path, "--generate-secrets", "--connect-attempts", "1"), out=out)
    status, reason = summary(out.getvalue())["d1"]
    assert code == 1 and status == "failed"
    expected = "No serial data received" if kind == "silent" else "Could not open %s" % port
    assert expected in reason
    assert "FatalError" in (tmp_path / "logs" / "d1.log").read_text()
    if kind == "silent":
        os.close(master)
        os.close(slave)


def test_jifang_flash_is_a_cli_command(tmp_path, capsys):
    csv = site_csv(tmp_path, [row(1, "/dev/ttyUSB0")])
    code = cli.main(["flash", str(csv), "--out", str(tmp_path / "out"), "--generate-secrets",
                     "--secrets", str(tmp_path / "s.json")])
    assert code == 0
    assert "1 built" in capsys.readouterr().out
    shutil.rmtree(tmp_path / "out")


def test_a_device_that_stops_during_the_last_write_is_not_provisioned(tmp_path):
    """Everything but the superblock pair arrived: still not this provisioning."""
    csv = site_csv(tmp_path, [row(1, "/dev/ttyUSB0")])
    first = FakeDevice()
    code, _ = run(csv, tmp_path, "--generate-secrets", devices={"/dev/ttyUSB0": first})
    tail = [op for op in first.ops if op[0] == "write"][0]
    tail_size = os.path.getsize(tmp_path / "build" / "d1.fs-tail.bin")
    dev = FakeDevice(answers_for=tail_size)          # answers for the tail, not the head
    code, text = run(csv, tmp_path, devices={"/dev/ttyUSB0": dev})
    assert code == 1 and summary(text)["d1"][0] == "failed" and tail[1] == 0x202000
    lay = partitions.layout("ESP32_GENERIC")
    assert images.read_marker(lambda a, n: bytes(dev.flash[a:a + n]), lay) is None
