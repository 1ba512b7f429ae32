"""Firmware figures on the sim target (the real MicroPython VM, heap capped at 128 KB):

  - zone-trip-to-frame-on-the-wire latency: from the control command that changes a
    zone loop to the DC-09 frame (AES) arriving at a receiver on loopback; it includes
    the debounce (config debounce_ms, 30 ms here) and one poll period (10 ms);
  - backlog drain: events queued while the network was down, delivered one ACK
    at a time once it is back, for several ACK poll periods (reporter ack_poll_ms:
    the panel polls its socket for the ACK so that waiting allocates nothing);
  - RAM in use after boot (gc.mem_alloc / mem_free at READY) per role;
  - the smallest heap the panel boots and reports in;
  - .mpy size of the app (what is flashed).

    .venv/bin/python bench/firmware.py [--trips 50]
"""
import argparse
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hil.sim import SimDut, build_mpy, pin_hash  # noqa: E402
from protocols import dc09  # noqa: E402

KEY_TEXT = "0123456789ABCDEF"
SALT = "b3"


class Receiver:
    """DC-09 receiver on loopback that timestamps each frame's arrival and ACKs it."""

    def __init__(self):
        self.key = dc09.key_from_text(KEY_TEXT)
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.port = self.srv.getsockname()[1]
        self.arrivals = []          # (monotonic, message)
        self.cond = threading.Condition()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        fr = dc09.FrameReader()
        while True:
            try:
                data = c.recv(2048)
            except OSError:
                return
            if not data:
                return
            t = time.monotonic()
            for f in fr.feed(data):
                msg = dc09.decode(f, self.key)
                c.sendall(dc09.encode(dc09.make_ack(msg), self.key))
                with self.cond:
                    self.arrivals.append((t, msg))
                    self.cond.notify_all()

    def wait(self, pred, after, timeout=10):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, m in self.arrivals[after:]:
                    if pred(m):
                        return t, m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("no frame")
                self.cond.wait(left)


def panel_cfg(rcv, **kw):
    cfg = {"role": "panel", "account": "1234", "salt": SALT, "test_interval": 0,
           "zones": [{"n": 1, "type": "instant", "partition": 1, "wiring": "deol"}],
           "users": [{"n": 1, "pin": pin_hash(SALT, "1234")}],
           "reporter": {"receivers": [{"host": "127.0.0.1", "port": rcv.port}],
                        "key_text": KEY_TEXT, "supervision": 600}}
    cfg.update(kw)
    return cfg


def ram_after_boot(dut):
    line = [l for l in dut.lines() if " READY " in l][-1]
    return int(re.search(r"mem_free=(\d+)", line).group(1)), int(re.search(r"mem_alloc=(\d+)", line).group(1))


def latency(work, trips):
    rcv = Receiver()
    dut = SimDut(panel_cfg(rcv), work / "lat").start()
    try:
        rcv.wait(lambda m: m.token == "ADM-CID", 0)            # boot report delivered
        lat = []
        state = "tamper"
        for i in range(trips):
            n = len(rcv.arrivals)
            q = 1 if state == "tamper" else 3
            t0 = time.monotonic()
            dut.trip(1, state)
            t1, m = rcv.wait(lambda m: m.token == "ADM-CID" and m.contact_id().code == 144
                             and m.contact_id().qualifier == q, n)
            lat.append((t1 - t0) * 1000)
            state = "normal" if state == "tamper" else "tamper"
            time.sleep(0.05)
        return lat
    finally:
        dut.stop()


def backlog_drain(work, events, ack_poll_ms):
    """Seconds from the network's return to the last of `events` queued events ACKed."""
    rcv = Receiver()
    cfg = panel_cfg(rcv)
    cfg["reporter"]["ack_poll_ms"] = ack_poll_ms
    dut = SimDut(cfg, work / ("drain%d" % ack_poll_ms)).start()
    try:
        rcv.wait(lambda m: m.token == "ADM-CID", 0)            # boot report delivered
        dut.net(False)
        state = "tamper"
        for i in range(events):
            dut.trip(1, state)
            dut.expect(r"EVENT seq=%d " % (i + 2), 5)
            state = "normal" if state == "tamper" else "tamper"
        n = len(rcv.arrivals)
        t0 = time.monotonic()
        dut.net(True)
        last = events + 1
        t1, _ = rcv.wait(lambda m: m.token == "ADM-CID" and m.seq == last, n, timeout=60)
        assert len([1 for _, m in rcv.arrivals[n:] if m.token == "ADM-CID"]) == events
        return t1 - t0
    finally:
        dut.stop()


def boots_and_reports(work, heap, mqtt_port=None):
    rcv = Receiver()
    cfg = panel_cfg(rcv)
    dut = SimDut(cfg, work / ("heap%s" % heap), heap=heap)
    try:
        dut.start(timeout=10)
        dut.trip(1, "tamper")
        rcv.wait(lambda m: m.token == "ADM-CID" and m.contact_id().code == 144, 0, timeout=5)
        return True
    except Exception:
        return False
    finally:
        dut.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trips", type=int, default=50)
    ap.add_argument("--backlog", type=int, default=100, help="events queued for the drain figure")
    args = ap.parse_args()
    build = build_mpy()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        lat = latency(work, args.trips)
        lat.sort()
        print("zone trip -> DC-09 frame on the wire (AES, TCP loopback, debounce 30 ms, poll 10 ms), %d trips:"
              % len(lat))
        print("  median %.1f ms   p95 %.1f ms   max %.1f ms   min %.1f ms" % (
            statistics.median(lat), lat[int(len(lat) * 0.95) - 1], lat[-1], lat[0]))

        print("backlog of %d events queued with the network down, drained after it returns"
              " (one frame per ACK):" % args.backlog)
        for poll in (1, 2, 5, 10):
            secs = backlog_drain(work, args.backlog, poll)
            print("  ack_poll_ms %2d%s  %5.2f s   %5.0f events/s" % (
                poll, " (default)" if poll == 2 else "          ", secs, args.backlog / secs))

        rcv = Receiver()
        from tests.support.mosquitto import running_mosquitto
        print("RAM (heap 128K = 129,536 B on the 64-bit unix port): in use after boot (READY),")
        print("and the live high-water after a trip was reported (collections every second):")
        with running_mosquitto(work) as (host, port):
            mq = {"host": host, "port": port}
            for name, cfg in (("panel", dict(panel_cfg(rcv), reporter=None)),
                              ("panel + DC-09", panel_cfg(rcv)),
                              ("panel + DC-09 + MQTT", dict(panel_cfg(rcv), mqtt=mq)),
                              ("intercom + DC-09 + MQTT", dict(panel_cfg(rcv), role="intercom", zones=[], mqtt=mq))):
                dut = SimDut(cfg, work / name.replace(" ", "_").replace("+", "")).start()
                free, alloc = ram_after_boot(dut)
                n = len(rcv.arrivals)
                if cfg.get("role") == "intercom":
                    dut.tamper(True)
                else:
                    dut.trip(1, "tamper")
                if cfg.get("reporter"):
                    rcv.wait(lambda m: m.token == "ADM-CID" and m.contact_id().code in (137, 144), n)
                time.sleep(1.2)
                st = dut.stats()
                dut.stop()
                print("  %-25s boot %6d B in use (%6d free)   high-water %6d B (%6d free now)" % (
                    name, alloc, free, st["alloc_max"], st["mem_free"]))

        smallest = None
        for kb in range(128, 60, -4):
            if boots_and_reports(work, "%dK" % kb):
                smallest = kb
            else:
                break
        print("smallest heap the panel boots and reports in (4 KB steps): %s KB" % smallest)
    # what is flashed: the .mpy of every module firmware/manifest.py ships (the sim's
    # tree also holds the tests' clock)
    from tools import manifest
    from tools.mpy import mpy_name
    sizes = {t: (build / mpy_name(t)).stat().st_size for _, t in manifest.files() if t.endswith(".py") and t != "main.py"}
    total = sum(sizes.values())
    protocols = sum(n for t, n in sizes.items() if t.startswith("protocols/"))
    print(".mpy size (firmware/manifest.py): %d B total (app %d B + panel-side protocols %d B)" % (
        total, total - protocols, protocols))


if __name__ == "__main__":
    main()
