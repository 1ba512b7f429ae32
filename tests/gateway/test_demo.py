"""`jifang demo` runs the whole path on its own and stops after --duration: by
default on the firmware (one MicroPython process per panel, residents who use the
keypads and zones), or with --simulated-panels on the Python simulator."""
import argparse
import subprocess

from gateway import demo


def run_demo(tmp_path, *argv):
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(list(argv) + ["--data-dir", str(tmp_path)])
    assert demo.run(args) == 0


def check_common(out, tmp_path):
    feed = [line for line in out.splitlines() if line.startswith("110 >> ")]
    assert feed and all(("ALARM" in line or "TROUBLE" in line) for line in feed)
    assert "Lakeside Garden" in feed[0]                          # the 110 center's registry enriches
    assert "log verify center" in out and "log verify 110" in out and out.count(": OK,") == 2
    assert (tmp_path / "asc-events.db").exists() and (tmp_path / "110-events.db").exists()
    return feed


def test_demo_on_firmware_panels_alarms_reach_110_and_stops(tmp_path, capsys):
    # Panel 2001's resident arms the flat then opens a window (perimeter: 131 at
    # once); 2002's presses the panic button (120); 2003 loses mains (301 after 3 s).
    run_demo(tmp_path, "--duration", "18", "--panels", "3", "--mean-gap", "1", "--seed", "7")
    out = capsys.readouterr().out
    assert "3 firmware panels" in out.splitlines()[0]
    feed = check_common(out, tmp_path)
    assert any("acct 2001" in l and "Perimeter" in l and "RESTORE" not in l for l in feed), feed
    assert any("acct 2002" in l and " Panic " in l and "RESTORE" not in l for l in feed), feed
    assert any("System reset" in l for l in feed)                # each firmware's boot report (305)
    # ... decided by the firmware's own state machine, not injected:
    log_2001 = (tmp_path / "panels" / "2001" / "2001.log").read_text()
    assert "armed_away -> triggered" in log_2001 and "ALARM p1 zone 2 code 131" in log_2001
    assert "ALARM p1 zone 5 code 120" in (tmp_path / "panels" / "2002" / "2002.log").read_text() \
        or "ALARM p1 zone 0 code 120" in (tmp_path / "panels" / "2002" / "2002.log").read_text()
    # every panel process was stopped (cleanly: its log ends with the firmware's STOP)
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True).stdout
    assert not left.strip(), left
    for account in ("2001", "2002", "2003"):
        assert " STOP clean" in (tmp_path / "panels" / account / ("%s.log" % account)).read_text()


def test_demo_simulated_panels_to_110_and_stops(tmp_path, capsys):
    run_demo(tmp_path, "--simulated-panels", "--duration", "4", "--panels", "20", "--mean-gap", "0.5",
             "--seed", "7")
    out = capsys.readouterr().out
    assert "20 simulated panels" in out.splitlines()[0]
    check_common(out, tmp_path)
