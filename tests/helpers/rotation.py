"""A rotation writer for the reader tests: `python -m tests.helpers.rotation REDIS_URL KEYS_DIR N`
performs N `tokensrv keys rotate` requests through the real KeyManager (its Valkey lock, its steps,
its file writes) in a process of its own, under a clock that moves 10 s per rotation so each one
promotes, creates and removes at once."""
from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from tokensrv.config import Settings, load_settings
from tokensrv.keys.manager import KeyManager
from tokensrv.server.app import open_redis
from tokensrv.store.redis import RedisStore

# fast keys, a short publish delay and token lifetime: every rotation is a promote, a create and
# the removal of the key retired one rotation ago
WRITER_SETTINGS = {"key_algorithm": "ES256", "jwks_max_age": 1, "key_check_interval": 1.0,
                   "key_rotation_period": 100, "access_token_ttl": 5, "id_token_ttl": 5}


def writer_settings(redis_url: str, keys_dir: Path) -> Settings:
    return load_settings({}, redis_url=redis_url, keys_dir=str(keys_dir), **WRITER_SETTINGS)


async def rotate(redis_url: str, keys_dir: Path, rotations: int) -> None:
    now = [int(time.time())]
    redis = open_redis(redis_url)
    try:
        keys = KeyManager(writer_settings(redis_url, keys_dir), RedisStore(redis).locks, lambda: now[0])
        await keys.tick()  # a fresh folder gets its first keys
        for _ in range(rotations):
            now[0] += 10
            steps = await keys.rotate_now()
            assert "promote" in [s.action for s in steps], steps
    finally:
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(rotate(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])))
