"""What is flashed is what is tested: three devices of the 50-device compound boot
on the unix port from the very littlefs images `jifang flash` built (hil/lfs_boot.py),
and each reports to a real gateway, loaded with the registry the same run
exported, under its own account with its own key."""
import asyncio
import csv
import io
import json
import socket
import subprocess
import threading
import time

import pytest

from gateway import config as gateway_config
from gateway.app import Gateway
from hil import sim_image
from hil.manifest import ROOT
from tests.support.ports import free_port, free_tcp_udp_port
from tests.tools.test_flash import args_for
from tools import flash

pytestmark = [pytest.mark.micropython, pytest.mark.slow]
BOOTED = ["b1-u1-0301", "b2-u3-0501", "b3-gate"]      # two panels (ESP32) and an intercom (S3 layout)
USER_PIN = "918273"


class ImageDevice:
    """One booted image: console lines, and the sim HAL's control socket."""

    def __init__(self, image, workdir):
        self.port = free_port()
        cmd, env = sim_image.boot_command(image, workdir, self.port)
        self.proc = subprocess.Popen(cmd, env=env, cwd=str(workdir), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    async def expect(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("no %r in:\n%s" % (text, "\n".join(self.lines[-30:])))
            await asyncio.sleep(0.05)

    def ctrl(self, command):
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall((command + "\n").encode())
            return s.makefile().readline().strip()

    def stop(self):
        if self.proc.poll() is None:
            try:
                self.ctrl("quit")
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def compound_for_this_test(tmp_path, receiver_port):
    """examples/compound.csv as it is, but the receivers are this test's gateway, no
    MQTT broker, and one resident with a PIN on the first panel."""
    rows = list(csv.DictReader(open(ROOT / "examples" / "compound.csv", encoding="utf-8")))
    for r in rows:
        r["receivers"] = "127.0.0.1:%d" % receiver_port
        r["mqtt"] = ""
    rows[0]["users"] = "1:user:%s:1+2" % USER_PIN
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = tmp_path / "compound.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


async def test_three_images_boot_and_report_under_their_own_account_and_key(tmp_path):
    port = free_tcp_udp_port()
    csv_path = compound_for_this_test(tmp_path, port)
    images_dir = tmp_path / "images"
    code = flash.run(args_for(csv_path, tmp_path, "--out", str(images_dir), "--generate-secrets"), out=io.StringIO())
    assert code == 0
    # the gateway knows every device from the registry this run exported
    import tomllib
    data = tomllib.loads((tmp_path / "registry.toml").read_text())
    data.update({"gateway": {"name": "compound"}, "store": {"path": str(tmp_path / "events.db")},
                 "receiver": {"listen": "127.0.0.1:%d" % port}})
    config = gateway_config.from_dict(data, tmp_path, "registry.toml")
    assert len(config.devices) == 50
    accounts = {r["device_id"]: r["account"] for r in csv.DictReader(open(csv_path, encoding="utf-8"))}
    secrets = json.loads((tmp_path / "secrets.json").read_text())
    keys = {secrets[accounts[d]]["key_hex"] for d in BOOTED}
    assert len(keys) == 3                                       # three different keys

    devices = []
    async with Gateway(config) as gw:
        try:
            for name in BOOTED:
                devices.append(ImageDevice(images_dir / ("%s.img" % name), tmp_path / name))
            for d in devices:
                await d.expect("READY")
            # a resident's PIN, hashed by the tool with the device's salt, arms the first panel
            assert devices[0].ctrl("key 1 %sA" % USER_PIN).startswith("ok")
            await devices[0].expect("armed_away exit delay")
            assert "user 1" in [l for l in devices[0].lines if "armed_away exit delay" in l][0]

            async def reported():
                events = [s.event for s in await gw.store.events()]
                return {accounts[d] for d in BOOTED} <= {e.account for e in events if e.code == 305}

            deadline = time.monotonic() + 30
            while not await reported():
                assert time.monotonic() < deadline, "\n".join(l for d in devices for l in d.lines[-15:])
                await asyncio.sleep(0.1)
            events = [s.event for s in await gw.store.events()]
            for name in BOOTED:
                mine = [e for e in events if e.account == accounts[name]]
                assert mine and all(e.source.startswith("dc09") and e.site for e in mine)
                assert all('"*ADM-CID"' in e.raw for e in mine)      # encrypted ("*"): decrypted with its key
                assert mine[0].site["site"].startswith("Lakeside Garden")
            # the device runs from its flash copy; the built image is untouched
            assert (tmp_path / BOOTED[0] / "flash.bin").read_bytes() != (images_dir / ("%s.img" % BOOTED[0])).read_bytes()
        finally:
            for d in devices:
                d.stop()
    for d in devices:
        assert any("STOP clean" in line for line in d.lines), d.lines[-20:]


async def test_a_board_with_an_old_filesystem_boots_what_was_written_over_it(tmp_path):
    """Only the image's used blocks are written: the rest of the partition keeps
    whatever it held. MicroPython's littlefs must not care: the written blocks boot,
    and the firmware allocates its queue in the stale blocks (erasing them first)."""
    import os
    from tests.tools.standin import FakeDevice, FakeLink
    from tests.tools.test_flash import row, site_csv
    from tools import images, partitions
    csv_path = site_csv(tmp_path, [row(1, "/dev/ttyUSB0")])
    dev = FakeDevice(flash=os.urandom(4 << 20))                 # a board full of an older life
    FakeLink.devices = {"/dev/ttyUSB0": dev}
    assert flash.run(args_for(csv_path, tmp_path, "--generate-secrets"), link_factory=FakeLink, out=io.StringIO()) == 0
    lay = partitions.layout("ESP32_GENERIC")
    workdir = tmp_path / "board"
    workdir.mkdir()
    (workdir / "flash.bin").write_bytes(bytes(dev.flash[lay.vfs_offset:lay.vfs_offset + lay.vfs_size]))
    device = ImageDevice(tmp_path / "unused.img", workdir)      # flash.bin exists: booted as it is
    try:
        await device.expect("READY")
        await device.expect("EVENT seq=1 q=1 code=305")
    finally:
        device.stop()
    fs = images.read_image((workdir / "flash.bin").read_bytes(), lay)
    assert "events.q" in fs.listdir("/") and "config.json" in fs.listdir("/")
