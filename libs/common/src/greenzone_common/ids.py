"""Identifiers made on hot paths: random (version 4) UUIDs from the operating system's random source, as
``uuid.uuid4`` makes them, with one system call for 256 of them instead of one each.

``uuid.uuid4`` reads 16 bytes with a ``getrandom`` call and builds the UUID from bytes: 1.3 µs on an idle machine,
and under load the system calls cost more (py-spy on a pipeline-svc worker taking batches of CloudEvents: 3% of its
CPU in ``getrandom`` alone, for two ids an event). Here each thread keeps 4 KiB read from ``os.urandom`` and takes
16 bytes at a time; a forked child drops what it inherited, so that no two processes hand out the same bytes.
"""

from __future__ import annotations

import os
import threading
import uuid

_POOL_BYTES = 4096
#: the version (4) and variant (RFC 4122) bits, set over 128 random bits as ``uuid.UUID(version=4)`` sets them
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_SET = (0x4000 << 64) | (0x8000 << 48)


class _Pool(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.at = 0


_pool = _Pool()


def _forget() -> None:
    _pool.data, _pool.at = b"", 0


os.register_at_fork(after_in_child=_forget)


def random_uuid() -> uuid.UUID:
    """A new random version 4 UUID (122 random bits from ``os.urandom``)."""
    pool = _pool
    at = pool.at
    if at + 16 > len(pool.data):
        pool.data, at = os.urandom(_POOL_BYTES), 0
    pool.at = at + 16
    return uuid.UUID(int=(int.from_bytes(pool.data[at : at + 16]) & _CLEAR) | _SET)
