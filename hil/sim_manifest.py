# The sim's tree (hil/sim.py build_mpy, build/mpy): what ships, and the clock the
# device-side tests (tests/firmware/device/*.py) drive the app with.
include("../firmware/manifest.py")
module("core/fakeclock.py", base_path="../firmware")
