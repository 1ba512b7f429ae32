"""`python -m gateway.console --config FILE.toml`: the same as `jifang gateway`, which
mounts the console from the file's [console] table (gateway/app.py); kept for the
scripts and notes that name it."""
import argparse
import sys

from gateway import service

parser = argparse.ArgumentParser(prog="python -m gateway.console", description=__doc__.splitlines()[0])
service.add_arguments(parser)
sys.exit(service.run(parser.parse_args()))
