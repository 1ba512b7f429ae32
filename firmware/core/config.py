# Device configuration: one JSON document per device (/config.json on the ESP32,
# written by tools/flash.py from the provisioning CSV; a temp file in simulation).
# Every key is optional; each module reads its keys with cfg.get(key, default), so
# the defaults live next to their use and the table of them in docs/firmware.md
# (no defaults dict held in RAM: the panel's heap is small).
import json


def load(path):
    with open(path) as f:
        return json.load(f)


def merge(cfg):
    """A copy of cfg (kept for callers that built configs from defaults)."""
    return dict(cfg)
