# Entry point. On the ESP32 boot runs main.py with /config.json; in simulation:
#   micropython -m main /path/to/config.json     (MICROPYPATH: hil.micropython)
import sys

_path = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].endswith(".json") else "/config.json"
try:
    from core.app import start
    start(_path)
except KeyboardInterrupt:
    pass
