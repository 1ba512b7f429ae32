"""A private Mosquitto broker on a free loopback port, for tests.

Never the standard port 1883: the machine's own broker may be running there and a
user's machine may have none. tools/install-system-deps.sh installs the binary.
"""
import contextlib
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.support.ports import free_port


def mosquitto_binary():
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError("mosquitto is not installed: run `make test` (it installs the Debian package)")


@contextlib.contextmanager
def running_mosquitto(tmp_dir):
    port = free_port()
    conf = Path(tmp_dir) / "mosquitto.conf"
    conf.write_text(
        "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n" % port)
    proc = subprocess.Popen([mosquitto_binary(), "-c", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("mosquitto did not start: %s" % proc.stderr.read().decode(errors="replace"))
                time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
