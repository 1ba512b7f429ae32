"""`jifang demo` runs the whole path on its own and stops after --duration."""
import argparse

from gateway import demo


def test_demo_runs_panels_to_110_and_stops(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    demo.add_arguments(parser)
    args = parser.parse_args(["--duration", "4", "--panels", "20", "--mean-gap", "0.5", "--seed", "7",
                              "--data-dir", str(tmp_path)])
    assert demo.run(args) == 0
    out = capsys.readouterr().out
    feed = [line for line in out.splitlines() if line.startswith("110 >> ")]
    assert feed and all(("ALARM" in line or "TROUBLE" in line) for line in feed)
    assert "Lakeside Garden" in feed[0]                          # the 110 center's registry enriches
    assert "log verify center" in out and "log verify 110" in out and out.count(": OK,") == 2
    assert (tmp_path / "asc-events.db").exists() and (tmp_path / "110-events.db").exists()
