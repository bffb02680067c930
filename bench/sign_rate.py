"""The reference for issuance: raw signatures per second with the server's own key, one process
pinned to each core, nothing else (no JSON, no base64, no HTTP)."""
from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from joserfc import jwk

# what a signature covers in a typical access token: base64url(header) "." base64url(claims)
SIGNING_INPUT = b"e" * 340


def private_key(keys_dir: Path) -> tuple[str, Any]:
    """(alg, cryptography private key) of the key that signs now."""
    current = [json.loads(p.read_text()) for p in keys_dir.glob("*.json")]
    data = max((d for d in current if d["state"] == "current"), key=lambda d: d["activated_at"] or 0)
    return data["alg"], jwk.import_key(data["jwk"]).private_key


def signer(key: Any) -> Callable[[bytes], bytes]:
    if isinstance(key, rsa.RSAPrivateKey):
        pad, digest = padding.PKCS1v15(), hashes.SHA256()
        return lambda data: key.sign(data, pad, digest)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algorithm = ec.ECDSA(hashes.SHA256())
        return lambda data: key.sign(data, algorithm)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign
    raise TypeError(f"unsupported key {type(key).__name__}")


def _count(keys_dir: Path, core: int, seconds: float, results: Any) -> None:
    os.sched_setaffinity(0, {core})
    sign = signer(private_key(keys_dir)[1])
    for _ in range(50):  # warm up caches and the CPU's frequency
        sign(SIGNING_INPUT)
    done, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(20):
            sign(SIGNING_INPUT)
        done += 20
        now = time.perf_counter()
        if now >= deadline:
            break
    results.put(done / (now - start))


def rate(keys_dir: Path, cores: Sequence[int], seconds: float) -> float:
    """Signatures per second summed over one process per core, all running at the same time."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    workers = [context.Process(target=_count, args=(keys_dir, core, seconds, results)) for core in cores]
    for worker in workers:
        worker.start()
    total = sum(results.get(timeout=seconds + 60) for _ in workers)
    for worker in workers:
        worker.join()
    return float(total)
