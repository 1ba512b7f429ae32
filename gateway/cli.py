"""The `jifang` command.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`; modules are imported only when their command runs, so
`jifang decode` starts fast and does not pull in the gateway's dependencies.
"""
import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "decode": ("gateway.codec_cli", "decode frames (DC-09, Contact ID, JT/T 808, NMEA) to JSON"),
    "encode": ("gateway.codec_cli", "encode JSON to a frame (DC-09, Contact ID, JT/T 808)"),
}


def build_parser():
    parser = argparse.ArgumentParser(prog="jifang", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        mod = importlib.import_module(module)
        adder = getattr(mod, "add_arguments_" + name, None) or mod.add_arguments
        adder(p)
        p.set_defaults(_module=module, _command=name)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    mod = importlib.import_module(args._module)
    runner = getattr(mod, "run_" + args._command, None) or mod.run
    try:
        return runner(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
