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
    "gateway": ("gateway.service", "run the gateway: receive, store, forward (--config FILE.toml)"),
    "log": ("gateway.log_cli", "event log: verify the hash chain, apply retention"),
    "demo": ("gateway.demo", "a compound of firmware panels -> alarm-service center -> 110 center, live"),
    "flash": ("tools.flash", "provision devices from a CSV: build app + config images, write with esptool"),
    "console-user": ("gateway.console.user_cli", "console accounts: create the first admin, list accounts, unlock after failed logins"),
    "vehicles": ("gateway.vehicles.cli", "JT/T 808 terminal registrations: list, release for re-registration"),
}


def build_parser():
    """The top-level parser: lists the commands without importing their modules, so
    one command's missing dependency cannot break the others."""
    parser = argparse.ArgumentParser(prog="jifang", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text) in COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def command_parser(name):
    module, help_text = COMMANDS[name]
    mod = importlib.import_module(module)
    parser = argparse.ArgumentParser(prog="jifang " + name, description=help_text)
    adder = getattr(mod, "add_arguments_" + name, None) or mod.add_arguments
    adder(parser)
    return mod, parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv)        # prints usage or help and exits
        return 2
    name = argv[0]
    mod, parser = command_parser(name)
    # Intermixed: options may come before or after the frames (`decode dc09 --key K -`).
    try:
        args = parser.parse_intermixed_args(argv[1:])
    except TypeError:                          # a command with sub-commands (`log verify`)
        args = parser.parse_args(argv[1:])
    runner = getattr(mod, "run_" + name, None) or mod.run
    try:
        return runner(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
