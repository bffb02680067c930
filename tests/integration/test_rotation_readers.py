"""Item 2 of issue 21: a server re-reading keys/ while another process performs a rotation step
must never find a folder without a signing key (it answered 503 "no signing key loaded").

A writer process rotates in a loop through the real KeyManager (its lock, its steps, its file
writes); this process re-reads the folder meanwhile as a server does, and checks every read."""
from __future__ import annotations

import asyncio
import dataclasses
import sys
import time

from tests.helpers.rotation import rotate, writer_settings
from tokensrv.keys.manager import KeyManager
from tokensrv.server.app import open_redis
from tokensrv.store.redis import RedisStore

ROTATIONS = 150
DEADLINE = 300.0


async def test_a_reader_never_sees_a_half_done_rotation_step(redis_url, tmp_path, redis):
    keys_dir = tmp_path / "keys"
    await rotate(redis_url, keys_dir, 0)  # the first keys, so every later state has a signing key
    client = open_redis(redis_url)
    reader = KeyManager(writer_settings(redis_url, keys_dir), RedisStore(client).locks, lambda: int(time.time()))
    writer = await asyncio.create_subprocess_exec(  # it writes to stderr only when it fails
        sys.executable, "-m", "tests.helpers.rotation", redis_url, str(keys_dir), str(ROTATIONS),
        stderr=asyncio.subprocess.PIPE)
    bad: list[tuple[str | None, list[str]]] = []
    reads, signers = 0, set()
    try:
        deadline = time.monotonic() + DEADLINE
        while writer.returncode is None:
            assert time.monotonic() < deadline, "the writer did not finish"
            await reader.reload(force=True)
            ring = reader.ring
            signing = ring.signing and ring.signing.kid
            currents = [k.kid for k in ring.keys if k.state == "current"]
            if signing is None or currents != [signing]:  # one current key, the one that signs
                bad.append((signing, currents))
            signers.add(signing)
            reads += 1
    finally:
        if writer.returncode is None:
            writer.kill()
        _, errors = await asyncio.wait_for(writer.communicate(), 60)
        await client.aclose()
    assert writer.returncode == 0, errors.decode()
    assert len(signers) > 10, "the reader saw too few rotations to prove anything"
    assert bad == [], f"{len(bad)} of {reads} reads had no single signing key"


async def first_keys(redis_url, keys_dir, client) -> KeyManager:
    await rotate(redis_url, keys_dir, 0)
    reader = KeyManager(writer_settings(redis_url, keys_dir), RedisStore(client).locks, lambda: int(time.time()))
    await reader.reload()
    assert reader.ring.signing is not None
    return reader


async def test_a_promotion_read_between_its_two_writes_is_read_as_done(redis_url, tmp_path, redis):
    client = open_redis(redis_url)
    try:
        reader = await first_keys(redis_url, tmp_path / "keys", client)
        old = reader.ring.signing
        upcoming = next(k for k in reader.ring.keys if k.state == "next")
        # the first of a promotion's two writes: the new current key; the old one not yet retired
        reader.folder.write(dataclasses.replace(upcoming, state="current", activated_at=old.activated_at + 10))
        await reader.reload()
        assert reader.ring.signing.kid == upcoming.kid
        assert [k.kid for k in reader.ring.keys if k.state == "current"] == [upcoming.kid]
        assert reader.ring.by_kid(old.kid).state == "retired"  # still published, retired since then
        assert reader.ring.by_kid(old.kid).retired_at == old.activated_at + 10
    finally:
        await client.aclose()


async def test_a_folder_without_a_current_key_keeps_the_last_good_key_signing(redis_url, tmp_path, redis, caplog):
    client = open_redis(redis_url)
    try:
        reader = await first_keys(redis_url, tmp_path / "keys", client)
        good = reader.ring.signing
        reader.folder.write(dataclasses.replace(good, state="retired", retired_at=good.activated_at))
        for _ in range(3):  # every check reads again, and says so once
            await reader.reload()
            assert reader.ring.signing == good
        held = [r for r in caplog.records if "no current key" in r.getMessage()]
        assert len(held) == 1 and good.kid in held[0].getMessage()
        assert reader.keys and not [k for k in reader.keys if k.state == "current"]  # the schedule sees the truth
        upcoming = next(k for k in reader.keys if k.state == "next")
        reader.folder.write(dataclasses.replace(upcoming, state="current", activated_at=good.activated_at + 10))
        await reader.reload()
        assert reader.ring.signing.kid == upcoming.kid
    finally:
        await client.aclose()


async def test_a_signing_key_that_left_the_folder_is_never_kept(redis_url, tmp_path, redis):
    client = open_redis(redis_url)
    try:
        reader = await first_keys(redis_url, tmp_path / "keys", client)
        reader.folder.remove(reader.ring.signing.kid)  # revoked by hand: fail closed, 503 until a key is current
        await reader.reload()
        assert reader.ring.signing is None
    finally:
        await client.aclose()
