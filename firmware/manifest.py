# What ships to a device: the one list, in MicroPython's manifest format (the
# micropython-lib way: https://docs.micropython.org/en/latest/reference/manifest.html).
#
# Read by tools/manifest.py for everything this project builds: the .mpy files of the
# flash image (tools/images.py) and the sim's tree (hil/sim.py, through
# hil/sim_manifest.py, which adds the device-side tests' clock). MicroPython's own
# build reads it too, to freeze the app into a firmware, where its code and its names
# sit in flash instead of the heap:
#     make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/board_manifest.py
# with board_manifest.py holding include("$(PORT_DIR)/boards/manifest.py") and
# include("/path/to/jifang/firmware/manifest.py") (docs/firmware.md, "What ships").
#
# Target paths are the device's: firmware/'s contents at the root, protocols/ as a
# package. A module split in two for its readers costs the device nothing it loads
# only when needed; every module it loads at boot is one more module object and its
# names in RAM unless frozen (bench/firmware.py measures RAM after boot).

metadata(description="jifang alarm panel and intercom firmware")

# Run by file name at boot (pyexec_file): stays source in the image.
module("main.py")

package("core", files=(
    "__init__.py", "app.py", "clock.py", "compat.py", "config.py", "equeue.py", "log.py",
    "mqtt.py", "reporter.py", "users.py",
    # not core/cpython.py (CPython's stand-ins, never imported on a device) nor
    # core/fakeclock.py (the tests' clock: hil/sim_manifest.py)
))
# hal/sim.py too: an image booted on the unix port (hil/sim_image.py) is the very
# image an ESP32 gets, with the HAL chosen by config.
package("hal", files=("__init__.py", "base.py", "esp32.py", "sim.py"))
package("panel", files=("__init__.py", "keypad.py", "panel.py", "state.py", "troubles.py", "zones.py"))
package("intercom", files=("__init__.py", "door.py", "wiegand.py"))

# The panel-side subset of protocols/ (MicroPython-clean, run on both interpreters).
# Not shipped though MicroPython-clean: dc09_data.py, contactid_codes.py,
# bus_status.py (no device needs them; hil/manifest.py compile-checks them).
package("protocols", base_path="..", files=(
    "__init__.py", "crc.py", "contactid_table.py", "contactid.py", "dc09_link.py", "dc09.py", "bus.py",
))
