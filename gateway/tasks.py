"""Stopping asyncio tasks reliably."""
import asyncio


async def cancel_and_wait(*tasks):
    """Cancel tasks and wait until they have ended. Cancels again while one is still
    running: on Python 3.11, asyncio.wait_for swallows a cancellation that arrives as
    its inner awaitable completes (bpo-42130), and the task would go on forever."""
    pending = {t for t in tasks if t is not None}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
