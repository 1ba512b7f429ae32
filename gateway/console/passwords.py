"""Argon2id off the event loop, in a small bounded pool.

One argon2id verification costs ~0.1 s of CPU and 64 MiB (argon2-cffi's RFC 9106
low-memory profile). Run on the event loop, 100 concurrent wrong logins held a
DC-09 ACK for 10.4 s (issue 11). Here every hash and verification runs on
`workers` threads (argon2-cffi releases the GIL while libargon2 works), and at
most `queue` more requests may wait for one; past that `Busy` is raised at once
and the caller answers 429, so a flood neither queues forever nor grows memory.

`verifications`, `hashes` and `refused` count what the pool did (shown in the
console's GET /api/logins for admins, and tests): the lockout is proven to act
before hashing by counting real verifications, not by mocking argon2.
"""
import asyncio
import concurrent.futures
import os
import secrets
import threading

import argon2

MIN_PASSWORD_LENGTH = 10


class PasswordPolicyError(ValueError):
    pass


class Busy(Exception):
    """Every worker and queue slot is taken: try again later."""


_hasher = argon2.PasswordHasher(type=argon2.Type.ID)
# Verifying against this when the account does not exist keeps the answer's timing
# (and its cost to us) the same as for a real account: no user enumeration by timing.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def hash_now(password):
    """Hash on the calling thread (command-line tools; never on the event loop)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordPolicyError("passwords have at least %d characters" % MIN_PASSWORD_LENGTH)
    return _hasher.hash(password)


def verify_now(password_hash, password):
    """(ok, upgraded_hash or None), on the calling thread. `password_hash` None
    (no such account) is verified against a dummy hash and always fails."""
    try:
        _hasher.verify(password_hash or _DUMMY_HASH, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False, None
    if password_hash is None:
        return False, None
    return True, (_hasher.hash(password) if _hasher.check_needs_rehash(password_hash) else None)


def _lower_thread_priority(niceness):
    """Runs first on each worker thread. On Linux the nice value is a per-thread
    attribute (setpriority(2) on the thread's id), inherited by the threads
    libargon2 starts for its lanes (parallelism 4): argon2 then takes the CPU only
    when the receiver, the pipeline and the console's own loop leave it free. Not
    Linux, or not allowed: the threads keep the process's priority."""
    if niceness:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                           os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) + niceness)
        except (AttributeError, OSError):
            pass


class HashPool:
    def __init__(self, workers=1, queue=8, niceness=0):
        self.workers, self.queue, self.niceness = workers, queue, niceness
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="console-argon2",
                                                               initializer=_lower_thread_priority,
                                                               initargs=(niceness,))
        self._slots = workers + queue          # running + waiting; checked and taken on the loop (no await between)
        self.verifications = 0
        self.hashes = 0
        self.refused = 0

    def thread_niceness(self):
        """The workers' nice values (Linux), for tests."""
        def own():
            return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        return [f.result() for f in [self._executor.submit(own) for _ in range(self.workers)]]

    def stats(self):
        return {"workers": self.workers, "queue": self.queue, "in_use": self.workers + self.queue - self._slots,
                "verifications": self.verifications, "hashes": self.hashes, "refused_busy": self.refused}

    def ticket(self):
        """A slot, taken now or `Busy` raised: the login takes it before it touches
        the database, so a flood refused as busy costs no write at all. Use it once
        (`verify`) or give it back (`cancel`)."""
        if self._slots <= 0:
            self.refused += 1
            raise Busy()
        self._slots -= 1
        return _Ticket(self)

    async def _run(self, fn, *args):
        return await self.ticket()._run(fn, *args)

    def _release(self):
        self._slots += 1

    async def verify(self, password_hash, password):
        return await self.ticket().verify(password_hash, password)

    async def hash(self, password):
        if len(password) < MIN_PASSWORD_LENGTH:          # refused before spending a hash on it
            raise PasswordPolicyError("passwords have at least %d characters" % MIN_PASSWORD_LENGTH)
        result = await self._run(hash_now, password)
        self.hashes += 1
        return result

    def close(self):
        self._executor.shutdown(wait=True)


class _Ticket:
    def __init__(self, pool):
        self.pool = pool
        self.used = False

    def cancel(self):
        if not self.used:
            self.used = True
            self.pool._release()

    async def _run(self, fn, *args):
        assert not self.used, "a ticket is used once"
        self.used = True
        loop = asyncio.get_running_loop()
        try:
            job = self.pool._executor.submit(fn, *args)
        except BaseException:
            self.pool._release()
            raise
        # The slot is given back when the job is over (done, or cancelled before it
        # started), not when the awaiting request goes away: a client that hangs up
        # cannot leave argon2 work running unaccounted for.
        job.add_done_callback(lambda _job: _call_soon(loop, self.pool._release))
        return await asyncio.wrap_future(job)

    async def verify(self, password_hash, password):
        result = await self._run(verify_now, password_hash, password)
        self.pool.verifications += 1
        return result


def _call_soon(loop, fn):
    try:
        loop.call_soon_threadsafe(fn)
    except RuntimeError:          # the loop is closed: the pool is gone with it
        pass
