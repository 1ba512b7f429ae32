# Test runner for the MicroPython side: runs every test_* function of the named
# modules on the interpreter that runs this file (the unix port, or CPython).
# The same test modules are collected by pytest on CPython, so each test proves
# the code on both interpreters. Plain asserts only: no pytest on the device side.
import sys
import gc


def run_module(name):
    mod = __import__(name)
    failed = 0
    passed = 0
    for attr in sorted(dir(mod)):
        if not attr.startswith("test_"):
            continue
        fn = getattr(mod, attr)
        if not callable(fn):
            continue
        try:
            fn()
            passed += 1
            print("PASS", name, attr)
        except Exception as e:  # report every failure, keep going
            failed += 1
            print("FAIL", name, attr, repr(e))
            sys.print_exception(e) if hasattr(sys, "print_exception") else None
        gc.collect()
    return passed, failed


def main(names):
    total_p = total_f = 0
    for name in names:
        p, f = run_module(name)
        total_p += p
        total_f += f
    gc.collect()
    print("mem_free", gc.mem_free() if hasattr(gc, "mem_free") else -1)
    print("%d passed, %d failed" % (total_p, total_f))
    sys.exit(1 if total_f or not total_p else 0)


main(sys.argv[1:])
