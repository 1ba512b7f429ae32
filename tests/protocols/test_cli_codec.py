"""`jifang decode` / `jifang encode`, run the way installers run them."""
import io
import json
import subprocess
import sys

from gateway import cli

CAPTURE = '9EC40027"ADM-CID"0001L0#1002[#1002|1602 00 001]'
CAPTURE_BAD_CRC = 'F92E0043"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024'
PYSIA_NULL_ENC = '76D80055"*NULL"0000R0L0#AAAB[B4BC8B40D0E6D959D6BEA78E88CC0B2155741A3C44FBB96D476A3E557CAD64D9'


def run(argv, stdin="", monkeypatch=None, capsys=None):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(argv)
    out = capsys.readouterr().out
    return code, [json.loads(line) if line.startswith("{") else line for line in out.splitlines()]


def test_decode_dc09_names_every_field(monkeypatch, capsys):
    code, [obj] = run(["decode", "dc09", CAPTURE], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0
    assert obj["account"] == "1002" and obj["sequence"] == 1 and obj["token"] == "ADM-CID"
    cid = obj["contact_id"]
    assert (cid["code"], cid["name"], cid["event_class"], cid["zone"]) == (602, "Periodic test report", "test", 1)


def test_decode_goes_on_after_a_bad_frame_and_exits_1(monkeypatch, capsys):
    stdin = "\n".join([CAPTURE_BAD_CRC, "garbage", PYSIA_NULL_ENC]) + "\n"
    code, out = run(["decode", "dc09", "--key-text", "AAAAAAAAAAAAAAAA", "-"], stdin, monkeypatch, capsys)
    assert code == 1
    assert out[0]["reason"] == "crc" and out[1]["reason"] == "format"
    assert out[2]["token"] == "NULL" and out[2]["encrypted"] and out[2]["timestamp"] == "2020-07-05T18:24:52Z"


def test_decode_wrong_key_and_stale_time(monkeypatch, capsys):
    code, [obj] = run(["decode", "dc09", "--key", "00" * 16, PYSIA_NULL_ENC], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and obj["reason"] == "key"
    # A well-formed frame stamped in 2020 is refused with --check-time, read without it.
    from protocols import dc09
    old = dc09.encode(dc09.Message("NULL", 3, "1234", None, "0", "", None, (2020, 1, 1, 0, 0, 0))).decode().strip()
    code, [obj] = run(["decode", "dc09", "--check-time", old], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and obj["reason"] == "timestamp" and "behind" in obj["error"]
    code, [obj] = run(["decode", "dc09", old], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and obj["timestamp"] == "2020-01-01T00:00:00Z"


def test_encode_takes_what_decode_prints(monkeypatch, capsys):
    code, [obj] = run(["decode", "dc09", CAPTURE], monkeypatch=monkeypatch, capsys=capsys)
    code, [frame] = run(["encode", "dc09", json.dumps(obj)], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and frame == CAPTURE
    code, [obj] = run(["decode", "cid", "1234 18 1131 01 015 8"], monkeypatch=monkeypatch, capsys=capsys)
    assert obj["name"] == "Perimeter" and obj["category"] == "burglary"
    code, [text] = run(["encode", "cid", json.dumps(obj)], monkeypatch=monkeypatch, capsys=capsys)
    assert text == "1234181131010158"


def test_encode_encrypted_from_contact_id_fields(monkeypatch, capsys):
    request = {"token": "ADM-CID", "sequence": 12, "account": "5678",
               "contact_id": {"qualifier": 1, "code": 120, "partition": 1, "zone": 4},
               "position": {"lat": 22.5431, "lon": 114.0579}}
    code, [frame] = run(["encode", "dc09", "--key-text", "ABCDEFGHIJKLMNOP", json.dumps(request)],
                        monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and '"*ADM-CID"0012L0#5678[' in frame
    code, [obj] = run(["decode", "dc09", "--key-text", "ABCDEFGHIJKLMNOP", frame], monkeypatch=monkeypatch, capsys=capsys)
    assert obj["contact_id"]["name"] == "Panic" and obj["encrypted"]
    assert abs(obj["position"]["lat"] - 22.5431) < 1e-4 and abs(obj["position"]["lon"] - 114.0579) < 1e-4


def test_encode_reports_a_missing_field(monkeypatch, capsys):
    code, [obj] = run(["encode", "cid", '{"account": "1234"}'], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "qualifier" in obj["error"]


def test_decode_nmea_and_jt808(monkeypatch, capsys):
    # NMEA: the RMC example of the NMEA 0183 reference pages (gpsd's NMEA revealed).
    code, [obj] = run(["decode", "nmea", "$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"],
                      monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and abs(obj["lat"] - 48.1173) < 1e-6 and obj["talker"] == "GP"
    code, [obj] = run(["decode", "jt808", "7e 00"], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "error" in obj


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "gateway.cli", "decode", "dc09", CAPTURE],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and json.loads(out.stdout)["contact_id"]["code"] == 602
