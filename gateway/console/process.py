"""The console in a child process of the gateway (console.process = "child", the default).

Why: nothing done through the console may delay the alarm path (issue 11). In the
gateway's process every console request shares the receiver's event loop and GIL:
argon2 verifications (0.1 s of CPU each), JSON encoding of a 1000-row search or a
CSV export, page and WebSocket traffic. A child process has its own loop and GIL,
runs at a lower CPU priority (`process_niceness`, so on a busy machine the kernel
gives the receiver the core first), and may crash or be killed without taking the
receiver down; the gateway restarts it.

What the child gets: the same config (pickled over its stdin at start, so it
needs no file and sees exactly what the gateway parsed), the event log through its
own read-only SQLite connection (new events are read every `live_poll_ms`
instead of the pipeline's in-process listener) and its own console database. What
must happen in the gateway goes back over the pipe as calls: `dispatch` (to the
110 forwarders' outboxes) and `alarm_disposed` (0x8203 to a vehicle's terminal).
Its log records come back too and are written by the gateway's own handler (same
JSON lines, same secret redaction), marked `"process_role": "console"`.

Protocol: stdin carries an 8-byte length and the pickled bootstrap, then JSON
lines (call replies); stdout carries JSON lines: {"ready": [host, port]},
{"log": {...}}, {"call": id, "op": name, "args": [...]}. The child's own fd 1 is
pointed at stderr once the protocol has its copy, so a stray print cannot corrupt it.
The child ends when its stdin closes (the gateway stopping, or dying: no orphan
keeps the port), and ignores SIGINT (a Ctrl-C on the terminal reaches the whole
process group; the gateway decides when the console stops).

`console.process = "inline"` serves it in the gateway's loop as before (the
argon2 pool keeps hashing off the loop either way); tests that drive the
console's internals use that, or create_app directly.
"""
import asyncio
import inspect
import json
import logging
import os
import pickle
import signal
import struct
import sys
import threading
from pathlib import Path

log = logging.getLogger("jifang.console")

START_TIMEOUT_S = 60          # importing and opening the databases takes ~1 s; this is only a bound
STOP_TIMEOUT_S = 10           # after stdin closes, then SIGTERM, then SIGKILL
RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
MAX_LINE = 1 << 20            # a log record or call longer than this is a bug; it is dropped, counted


class ConsoleProcess:
    """The gateway's side: starts the child, serves its calls, restarts it if it
    dies, stops it with the gateway. `addresses` and `cleanup()` as an AppRunner's."""

    def __init__(self, gateway_config, settings, geofences=(), dispatch=None, on_disposed=None, log_level=None,
                 release_vehicle=None):
        self.config = gateway_config
        release = None
        if release_vehicle is not None:
            async def release(account, by, reason):
                released = release_vehicle(account, by, reason)
                if inspect.isawaitable(released):      # cluster mode: run off the loop
                    released = await released
                return released
        self.calls = {"dispatch": dispatch, "alarm_disposed": on_disposed, "release_vehicle": release}
        self.settings = settings
        self.geofences = tuple(geofences)
        self.log_level = log_level or logging.getLevelName(logging.getLogger("jifang").getEffectiveLevel())
        self.addresses = []
        self.pid = None
        self.restarts = 0
        self.dropped_lines = 0
        self._proc = None
        self._reader = None
        self._calls = set()
        self._stopping = False
        self._supervisor = None

    async def start(self):
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="console-process")
        return self

    def _bootstrap(self):
        return pickle.dumps({"config": self.config, "settings": self.settings, "geofences": self.geofences,
                             "log_level": self.log_level, "calls": [k for k, fn in self.calls.items() if fn]})

    async def _spawn(self):
        env = dict(os.environ)
        # The child imports the same gateway package as this process, wherever it came from.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.console.process", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env=env, limit=MAX_LINE)
        self.pid = self._proc.pid
        blob = self._bootstrap()
        self._proc.stdin.write(struct.pack(">Q", len(blob)) + blob)
        await self._proc.stdin.drain()
        ready = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(self._proc, ready), name="console-process-reader")
        try:
            self.addresses = [tuple(await asyncio.wait_for(asyncio.shield(ready), START_TIMEOUT_S))]
        except BaseException:
            await self._end(self._proc)
            raise
        log.info("console process started", extra={"pid": self.pid, "listen": "%s:%d" % self.addresses[0]})

    async def _read(self, proc, ready):
        failure = "no reason given (see its stderr)"
        while True:
            try:
                line = await proc.stdout.readline()
            except ValueError:                 # longer than MAX_LINE: skip it, keep the protocol
                self.dropped_lines += 1
                await proc.stdout.read(MAX_LINE)
                continue
            if not line:
                break
            try:
                message = json.loads(line)
            except ValueError:
                self.dropped_lines += 1
                continue
            if "log" in message:
                _relog(message["log"])
            elif "call" in message:
                task = asyncio.create_task(self._serve_call(proc, message))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)
            elif "ready" in message and not ready.done():
                ready.set_result(message["ready"])
            elif "failed" in message:
                failure = message["failed"]
        if not ready.done():
            ready.set_exception(RuntimeError("the console process exited (code %s) before it listened: %s"
                                             % (await proc.wait(), failure)))

    async def _serve_call(self, proc, message):
        op, args = message.get("op"), message.get("args", [])
        try:
            fn = self.calls.get(op)
            if fn is None:
                raise ValueError("no call %r" % op)
            reply = {"ok": True, "result": await fn(*args)}
        except Exception as exc:           # the child reports it (dispatch records it as failed)
            reply = {"ok": False, "error": str(exc) or repr(exc)}
            # The console answers these two differently (404, 409): their kind crosses the pipe.
            if isinstance(exc, (LookupError, ValueError)):
                reply["kind"] = "lookup" if isinstance(exc, LookupError) else "value"
        reply["reply"] = message["call"]
        if proc.returncode is None and not proc.stdin.is_closing():
            proc.stdin.write(json.dumps(reply, default=str).encode() + b"\n")
            try:
                await proc.stdin.drain()
            except ConnectionError:
                pass

    async def _supervise(self):
        while True:
            # Whatever ended the reader (EOF, or a failure reading), the process is
            # waited for and, unless we are stopping, started again.
            await asyncio.gather(self._reader, return_exceptions=True)
            code = await self._proc.wait()
            if self._stopping:
                return
            delay = RESTART_BACKOFF_S[min(self.restarts, len(RESTART_BACKOFF_S) - 1)]
            log.error("console process exited; restarting it", extra={"pid": self.pid, "code": code, "in_s": delay})
            await asyncio.sleep(delay)
            self.restarts += 1
            try:
                await self._spawn()
            except Exception as exc:
                log.error("console process did not start", extra={"error": repr(exc)})
                self._reader = asyncio.get_running_loop().create_future()
                self._reader.set_result(None)

    async def _end(self, proc):
        if proc.returncode is None:
            if not proc.stdin.is_closing():
                proc.stdin.close()            # the child's signal to shut down cleanly
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except asyncio.TimeoutError:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
                except asyncio.TimeoutError:
                    proc.kill()
                    await proc.wait()

    async def cleanup(self):
        self._stopping = True
        if self._proc is not None:
            await self._end(self._proc)
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in list(self._calls):
            task.cancel()
        await asyncio.gather(*self._calls, return_exceptions=True)
        log.info("console process stopped", extra={"pid": self.pid, "code": self._proc.returncode if self._proc else None})


_RECORD_FIELDS = ("name", "levelno", "levelname", "msg", "created", "msecs", "pathname", "lineno", "funcName")


def _relog(data):
    """A record from the child, handled by this process's logging (its handlers,
    its redaction of secrets)."""
    data = dict(data)
    data["args"] = None
    data["process_role"] = "console"
    record = logging.makeLogRecord(data)
    logger = logging.getLogger(record.name)
    if logger.isEnabledFor(record.levelno):
        logger.handle(record)


# -- the child ----------------------------------------------------------------------


class _Protocol:
    """The child's end: JSON lines out on the saved stdout, replies in on stdin."""

    def __init__(self, out_fd):
        self.out = os.fdopen(out_fd, "wb", buffering=0)
        self.lock = threading.Lock()             # log records come from executor threads too
        self.pending = {}
        self.next_id = 0
        self.loop = None

    def send(self, message):
        line = json.dumps(message, default=repr, ensure_ascii=False).encode() + b"\n"
        with self.lock:
            self.out.write(line)

    async def call(self, op, *args):
        self.next_id += 1
        call_id = self.next_id          # its own: other calls may start while this one waits
        future = self.loop.create_future()
        self.pending[call_id] = future
        try:
            self.send({"call": call_id, "op": op, "args": list(args)})
            reply = await future
        finally:
            self.pending.pop(call_id, None)
        if not reply.get("ok"):
            kind = {"lookup": LookupError, "value": ValueError}.get(reply.get("kind"), RuntimeError)
            raise kind(reply.get("error", "failed in the gateway"))
        return reply.get("result")

    def on_reply(self, message):
        future = self.pending.get(message.get("reply"))
        if future is not None and not future.done():
            future.set_result(message)


class _ForwardHandler(logging.Handler):
    def __init__(self, protocol):
        super().__init__()
        self.protocol = protocol

    def emit(self, record):
        try:
            data = {k: getattr(record, k) for k in _RECORD_FIELDS}
            data["msg"] = record.getMessage()
            for key, value in vars(record).items():
                if key not in data and key not in _SKIP and not key.startswith("_"):
                    data[key] = value
            if record.exc_info:
                data["exception"] = logging.Formatter().formatException(record.exc_info)
            self.protocol.send({"log": data})
        except Exception:
            self.handleError(record)


_SKIP = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName"}


def _read_bootstrap():
    head = os.read(0, 8)
    while len(head) < 8:
        more = os.read(0, 8 - len(head))
        if not more:
            raise SystemExit("console process: no bootstrap on stdin")
        head += more
    size = struct.unpack(">Q", head)[0]
    chunks, left = [], size
    while left:
        chunk = os.read(0, min(left, 1 << 16))
        if not chunk:
            raise SystemExit("console process: bootstrap cut short")
        chunks.append(chunk)
        left -= len(chunk)
    return pickle.loads(b"".join(chunks))


async def _child_main(boot, protocol):
    from gateway.console.app import create_app
    from gateway.console.listen import console_db_path, serve_app
    from gateway.console.source import EventSource

    protocol.loop = loop = asyncio.get_running_loop()
    config, settings = boot["config"], boot["settings"]
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    reader = asyncio.StreamReader(limit=MAX_LINE)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def read_replies():
        while line := await reader.readline():
            try:
                protocol.on_reply(json.loads(line))
            except ValueError:
                continue
        stop.set()                               # the gateway closed our stdin, or died
    replies = asyncio.create_task(read_replies())

    async def dispatch(event_id, operator, note):
        return await protocol.call("dispatch", event_id, operator, note)

    async def alarm_disposed(item):
        return await protocol.call("alarm_disposed", item)

    async def release_vehicle(account, by, reason):
        return await protocol.call("release_vehicle", account, by, reason)

    source = EventSource.from_log(config, boot["geofences"], settings.live_poll_ms / 1000)
    app = create_app(source, console_db_path(config, settings), dispatch if "dispatch" in boot["calls"] else None,
                     settings, alarm_disposed if "alarm_disposed" in boot["calls"] else None,
                     release_vehicle=release_vehicle if "release_vehicle" in boot["calls"] else None)
    runner = await serve_app(app, settings)
    protocol.send({"ready": list(runner.addresses[0][:2])})
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        replies.cancel()


def child():
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out_fd = os.dup(1)
    os.dup2(2, 1)                                # stray prints go to stderr, not into the protocol
    protocol = _Protocol(out_fd)
    boot = _read_bootstrap()
    settings = boot["settings"]
    if settings.process_niceness:
        os.nice(settings.process_niceness)
    root = logging.getLogger("jifang")
    root.handlers[:] = [_ForwardHandler(protocol)]
    root.setLevel(boot["log_level"])
    root.propagate = False
    try:
        asyncio.run(_child_main(boot, protocol))
    except Exception as exc:              # e.g. the listen address is taken: say so to the gateway
        protocol.send({"failed": "%s: %s" % (type(exc).__name__, exc)})
        sys.exit(1)


if __name__ == "__main__":
    child()
