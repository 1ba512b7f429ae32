"""`jifang gateway --config FILE.toml`: run one gateway until SIGINT or SIGTERM."""
import asyncio
import signal
import sys


def add_arguments(parser):
    parser.add_argument("--config", required=True, help="gateway TOML file (see examples/)")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def tune_gc():
    """The collector's thresholds for a gateway process: the first generation is
    collected after 50,000 net allocations instead of 700. A center holding
    thousands of connections keeps a large heap of long-lived objects, and at the
    default every few hundred messages started a collection (the fleet bench lost
    a fifth of the center's time to them). The message paths leave no reference
    cycles behind (tests/protocols/test_jt808.py), so collecting less often costs
    no memory that matters."""
    import gc
    gc.set_threshold(50_000, 20, 100)


async def serve(config, stop=None):
    from gateway.app import Gateway
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Gateway(config):
        await stop.wait()


def run(args):
    from gateway import config as config_module, logs
    try:
        config = config_module.load(args.config)
        config_module.refuse_example_secrets(config, args.config)
    except config_module.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logs.setup(args.log_level, config.secrets, config.name)
    tune_gc()
    try:
        asyncio.run(serve(config))
    except OSError as exc:          # typically: a listen address already in use
        print("cannot start gateway %s: %s; fix: check receiver.listen / http.listen in %s"
              % (config.name, exc, args.config), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":      # `python -m gateway.service`: how the fault tests run a gateway process
    import argparse
    _parser = argparse.ArgumentParser(prog="python -m gateway.service", description=__doc__)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
