"""RAM on the real MicroPython VM with the heap capped at 128 KB: gc.mem_free() after a
collection stays flat over 10,000 events through the whole pipeline (zones, state
machine, persistent queue, DC-09 + AES framing, ack)."""
import os
import re
import subprocess

import pytest

from hil import micropython
from hil.sim import build_mpy

DEVICE = os.path.join(os.path.dirname(__file__), "device")


def run_device(script, *args, heap="128K", timeout=120):
    build = build_mpy()
    env = dict(os.environ, MICROPYPATH=".frozen:%s" % build)
    return subprocess.run([micropython.micropython_binary(), "-X", "heapsize=" + heap,
                           os.path.join(DEVICE, script)] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.micropython
def test_mem_free_stable_over_10000_events(tmp_path):
    # the queue file on tmpfs when there is one: every commit is fsync'ed, and this
    # test is about RAM, not about the host's disk
    shm = "/dev/shm"
    qfile = os.path.join(shm, "jf-soak-%d.q" % os.getpid()) if os.path.isdir(shm) else str(tmp_path / "soak.q")
    try:
        r = run_device("soak.py", 10000, qfile)
    finally:
        if os.path.exists(qfile):
            os.remove(qfile)
    assert r.returncode == 0, r.stdout + r.stderr
    marks = [int(m) for m in re.findall(r"^MEM \d+ (\d+)$", r.stdout, re.M)]
    assert len(marks) == 10, r.stdout
    # after the first 1,000 events (one-time lazy imports), not one byte drifts
    assert max(marks) - min(marks) == 0, marks
    end = re.search(r"END events (\d+) mem_free (\d+)", r.stdout)
    assert int(end.group(1)) >= 10000
    print(r.stdout)


@pytest.mark.micropython
def test_idle_poll_loop_allocates_nothing(tmp_path):
    r = run_device("alloc.py", tmp_path / "alloc.q")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "IDLE_ALLOC_FREE 1" in r.stdout, r.stdout
    m = re.search(r"EVENT_ALLOC (\d+) (\d+)", r.stdout)
    assert int(m.group(1)) >= 1
    print("bytes allocated for %s alarm event(s) through state machine and queue: %s" % (m.group(1), m.group(2)))
