"""Decoder throughput, every codec side by side in one run.

    .venv/bin/python bench/codecs.py [--seconds 1.0]

Prints frames per second for each decoder on real frames (the same ones the tests
quote), and pynmea2's raw parse rate as the reference for our NMEA layer (which
adds checksum, talker, range and void-fix checks on top of pynmea2).
"""
import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pynmea2  # noqa: E402

from protocols import contactid, dc09  # noqa: E402
from tests.mpy.test_dc09 import CAP_CID_1407, CAP_XTRM_1131, PYSIA_NULL_ENC  # noqa: E402

NMEA_RMC = "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
NMEA_GGA = "$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"


def rate(fn, seconds):
    """Calls per second of fn(), measured over about `seconds`."""
    n = 0
    batch = 64
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def cases():
    key = dc09.key_from_text("AAAAAAAAAAAAAAAA")
    enc_cid = dc09.encode(dc09.Message("ADM-CID", 1, "1234", None, "0", "#1234|1130 01 015",
                                       dc09.position_xdata(22.54, 114.05), (2026, 1, 1, 0, 0, 0)), key)
    reader = dc09.FrameReader()
    segment = CAP_CID_1407 * 16
    out = [
        ("dc09 decode, plain ADM-CID", lambda: dc09.decode(CAP_XTRM_1131)),
        ("dc09 decode, plain with timestamp", lambda: dc09.decode(CAP_CID_1407)),
        ("dc09 decode, AES-128 ADM-CID + X/Y", lambda: dc09.decode(enc_cid, key)),
        ("dc09 decode, pysiaalarm's AES NULL", lambda: dc09.decode(PYSIA_NULL_ENC, key)),
        ("dc09 FrameReader, 16 frames/segment (per frame)", lambda: reader.feed(segment), 16),
        ("dc09 encode, AES-128 ADM-CID", lambda: dc09.encode(dc09.decode(enc_cid, key), key)),
        ("contact id decode (16 digits)", lambda: contactid.decode("1234181131010158")),
    ]
    try:
        from protocols import jt808
        frame = bytes.fromhex(_jt808_sample())
        splitter = jt808.FrameSplitter()
        stream = frame * 16
        out.append(("jt808 decode, 0x0200 position + 7 items", lambda: jt808.decode_frame(frame)))
        out.append(("jt808 FrameSplitter, 16 frames/segment (per frame)", lambda: splitter.feed(stream), 16))
    except Exception as e:  # noqa: BLE001 - the bench reports what it could not measure
        print("jt808: not measured (%s)" % e)
    try:
        from protocols import nmea
        out.append(("nmea decode, RMC (ours, on pynmea2)", lambda: nmea.decode(NMEA_RMC)))
        out.append(("nmea decode, GGA (ours, on pynmea2)", lambda: nmea.decode(NMEA_GGA)))
    except Exception as e:  # noqa: BLE001
        print("nmea: not measured (%s)" % e)
    out.append(("pynmea2.parse, RMC (reference)", lambda: pynmea2.parse(NMEA_RMC, check=True)))
    out.append(("pynmea2.parse, GGA (reference)", lambda: pynmea2.parse(NMEA_GGA, check=True)))
    return out


def _jt808_sample():
    # A power-low alarm position with 7 extra items, captured by Traccar's test suite
    # (the same frame tests/protocols/test_jt808.py quotes as T_POWER_LOW).
    from tests.protocols.test_jt808 import T_POWER_LOW
    return T_POWER_LOW.hex()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per decoder")
    args = parser.parse_args()
    print("jifang codec bench — Python %s on %s, %.1f s per row" % (
        platform.python_version(), platform.machine(), args.seconds))
    print("%-50s %14s" % ("decoder", "frames/s"))
    for case in cases():
        label, fn = case[0], case[1]
        per_call = case[2] if len(case) > 2 else 1
        print("%-50s %14s" % (label, "{:,.0f}".format(rate(fn, args.seconds) * per_call)), flush=True)


if __name__ == "__main__":
    main()
