"""Identifiers made on hot paths, the same values ``uuid.uuid4`` and ``uuid.uuid5`` make, for less.

- :func:`random_uuid`: a random (version 4) UUID from the operating system's random source, with one system call for
  256 of them instead of one each. ``uuid.uuid4`` reads 16 bytes with a ``getrandom`` call: under load py-spy showed
  a pipeline-svc worker taking batches of CloudEvents spending 3% of its CPU in ``getrandom`` alone, for two ids an
  event. Each thread keeps 4 KiB read from ``os.urandom`` and takes 16 bytes at a time; a forked child drops what it
  inherited, so that no two processes hand out the same bytes.
- :func:`name_uuid`: ``uuid.uuid5(namespace, name)``, without converting the namespace to bytes on every call.

Both are asyncpg's own UUID type, the one it returns for ``uuid`` columns: a ``uuid.UUID`` (equal, same hash, same
text) built from 16 bytes in C instead of Python (0.07 against 0.5-0.9 µs), which the driver also writes without a
conversion.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid

from asyncpg.pgproto.pgproto import UUID as _UUID

_POOL_BYTES = 4096


def _stamp(data: bytearray, offset: int, version: int) -> None:
    """Set the version and the RFC 4122 variant of the UUID at ``offset``, as ``uuid.UUID(version=…)`` does."""
    data[offset + 6] = (data[offset + 6] & 0x0F) | (version << 4)
    data[offset + 8] = (data[offset + 8] & 0x3F) | 0x80


class _Pool(threading.local):
    def __init__(self) -> None:
        self.data = b""
        self.at = 0


_pool = _Pool()


def _forget() -> None:
    _pool.data, _pool.at = b"", 0


os.register_at_fork(after_in_child=_forget)


def _refill() -> bytes:
    data = bytearray(os.urandom(_POOL_BYTES))
    for offset in range(0, _POOL_BYTES, 16):
        _stamp(data, offset, 4)
    return bytes(data)


def random_uuid() -> uuid.UUID:
    """A new random version 4 UUID (122 random bits from ``os.urandom``)."""
    pool = _pool
    at = pool.at
    if at + 16 > len(pool.data):
        pool.data, at = _refill(), 0
    pool.at = at + 16
    return _UUID(pool.data[at : at + 16])  # type: ignore[no-any-return]  # asyncpg's stubs leave it untyped


def name_uuid(namespace: bytes, name: str) -> uuid.UUID:
    """``uuid.uuid5(uuid.UUID(bytes=namespace), name)``: ``namespace`` as its 16 bytes, kept by the caller."""
    data = bytearray(hashlib.sha1(namespace + name.encode(), usedforsecurity=False).digest()[:16])
    _stamp(data, 0, 5)
    return _UUID(bytes(data))  # type: ignore[no-any-return]
