# What differs between MicroPython and CPython, in one place, so the firmware's pure
# logic (zones, state machines, queue) also runs under CPython for pytest. The CPython
# side lives in core/cpython.py so the device never loads its names.
try:
    from time import ticks_ms, ticks_add, ticks_diff, sleep_ms  # MicroPython
    from micropython import const
    from gc import mem_free, mem_alloc
except ImportError:
    from core.cpython import ticks_ms, ticks_add, ticks_diff, sleep_ms, const, mem_free, mem_alloc


def wake(task):
    """Put `task`, asleep in asyncio.sleep_ms, back on the run queue now: what
    asyncio.Event.set() does for its waiters, without waiting on an Event, which
    costs a generator per wait (and a task per timeout, with wait_for_ms). Only
    for a task known to be in such a sleep (MicroPython's asyncio)."""
    import asyncio
    tq = asyncio.core._task_queue
    tq.remove(task)
    tq.push(task)
