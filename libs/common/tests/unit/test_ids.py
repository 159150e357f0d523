"""Random UUIDs from a pool of OS random bytes: well-formed version 4 UUIDs, never repeated, across threads and
across a fork; name UUIDs equal to uuid5's."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from greenzone_common.ids import name_uuid, random_uuid


def test_they_are_version_4_rfc_4122_uuids() -> None:
    for _ in range(1000):
        u = random_uuid()
        assert u.version == 4 and u.variant == uuid.RFC_4122
        assert uuid.UUID(str(u)) == u


def test_none_repeats_across_many_pools() -> None:
    made = [random_uuid() for _ in range(20_000)]  # some 80 refills of the pool
    assert len(set(made)) == len(made)


def test_the_bits_are_random_beyond_the_fixed_ones() -> None:
    made = [random_uuid().int for _ in range(2000)]
    fixed = (0xF000 << 64) | (0xC000 << 48)
    ones = 0
    for value in made:
        ones |= value & ~fixed
    assert ones == ((1 << 128) - 1) & ~fixed  # every free bit was 1 at least once: nothing stuck at zero


def test_threads_never_share_bytes() -> None:
    made: list[uuid.UUID] = []
    lock = threading.Lock()

    def work() -> None:
        mine = [random_uuid() for _ in range(5000)]
        with lock:
            made.extend(mine)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == 20_000


def test_a_forked_child_does_not_hand_out_its_parents_next_ids() -> None:
    random_uuid()  # the pool now holds bytes the parent will use next
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        os.write(write, b"".join(random_uuid().bytes for _ in range(10)))
        os._exit(0)
    os.close(write)
    child = os.read(read, 160)
    os.close(read)
    os.waitpid(pid, 0)
    parents = b"".join(random_uuid().bytes for _ in range(10))
    assert len(child) == 160
    assert child != parents
    assert not {child[i : i + 16] for i in range(0, 160, 16)} & {parents[i : i + 16] for i in range(0, 160, 16)}


@pytest.mark.parametrize("name", ["run\x1fcdevents\x1fpipeline\x1f/bench/ci/run-1", "", "ünïcode ✓", "x" * 500])
def test_name_uuids_are_uuid5(name: str) -> None:
    namespace = uuid.UUID("6f1c9a52-3b8e-4c1d-9a57-2f6b3e0d8c41")
    made = name_uuid(namespace.bytes, name)
    assert made == uuid.uuid5(namespace, name)
    assert str(made) == str(uuid.uuid5(namespace, name)) and hash(made) == hash(uuid.uuid5(namespace, name))


def test_they_are_uuids_the_standard_library_takes() -> None:
    made = random_uuid()
    assert isinstance(made, uuid.UUID)
    assert uuid.UUID(bytes=made.bytes) == made and uuid.UUID(int=made.int) == made
    assert {made: 1}[uuid.UUID(str(made))] == 1
