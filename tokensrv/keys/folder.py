"""The keys folder (TOKENSRV_KEYS_DIR): one JSON file per signing key, read whole or not at all.

Readers never see half a step: each file is replaced whole (a new inode) and a read that saw the
folder change under it reads again (`snapshot`). `KeyRing` is what one reading publishes and signs
with. The schedule that decides the steps is signing.py; the instance that performs them, manager.py.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from joserfc import jwk

from tokensrv.keys.signing import SigningKey, current_key, settled

Fingerprint = tuple[tuple[str, int, int, int], ...]
SNAPSHOT_ATTEMPTS = 5  # reads of a folder that changes under each of them before giving up for now

class KeyFolderBusy(Exception):
    """keys/ changed during every attempt to read it whole."""


@dataclass(frozen=True)
class Snapshot:
    keys: tuple[SigningKey, ...]
    problems: tuple[str, ...]
    fingerprint: Fingerprint


class KeyFolder:
    """`<kid>.json` files, mode 0600, written atomically. Unreadable files are reported, skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fingerprint(self) -> Fingerprint:
        """Cheap change detection: name, inode, size and mtime of each key file."""
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return ()
        found = []
        for entry in entries:
            if not (entry.name.endswith(".json") and entry.is_file()):
                continue
            try:
                stat = entry.stat()
            except FileNotFoundError:  # removed since the listing: the next fingerprint shows it
                continue
            found.append((entry.name, stat.st_ino, stat.st_size, stat.st_mtime_ns))
        return tuple(sorted(found))

    def snapshot(self) -> Snapshot | None:
        """The folder as it was at one instant, settled; None when it changed during every read.

        Listed, read, listed again: files are only ever replaced whole or removed, so when the
        two listings agree every file read is the one both listed. Without this a reader could
        read the new current key before its promotion and the old one after its retirement:
        no signing key at all.
        """
        for _ in range(SNAPSHOT_ATTEMPTS):
            before = self.fingerprint()
            keys, problems = self._read(before)
            if self.fingerprint() == before:
                return Snapshot(tuple(settled(keys)), tuple(problems), before)
        return None

    def load(self) -> tuple[list[SigningKey], list[str]]:
        """Every readable key of one snapshot, and one problem line per file that could not be used."""
        snapshot = self.snapshot()
        if snapshot is None:
            raise KeyFolderBusy(f"{self.path} kept changing while it was read")
        return list(snapshot.keys), list(snapshot.problems)

    def _read(self, listing: Fingerprint) -> tuple[list[SigningKey], list[str]]:
        keys: list[SigningKey] = []
        problems: list[str] = []
        for name, *_ in listing:
            path = self.path / name
            try:
                key = SigningKey.from_file(json.loads(path.read_bytes()))
                if f"{key.kid}.json" != name:
                    raise ValueError("file name does not match its kid")
                keys.append(key)
            except FileNotFoundError:
                continue  # removed since the listing: another instance's step; the next listing shows it
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # the reason only: never the content, which may hold private key material
                problems.append(f"key file {path} is unusable: {type(exc).__name__}: {_safe_reason(exc)}")
        return keys, problems

    def write(self, key: SigningKey) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        data = json.dumps(key.to_file(), indent=1).encode()
        final = self.path / f"{key.kid}.json"
        temp = self.path / f".{key.kid}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._sync_dir()

    def remove(self, kid: str) -> None:
        (self.path / f"{kid}.json").unlink(missing_ok=True)
        self._sync_dir()

    def _sync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _safe_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return "not valid JSON"
    if isinstance(exc, KeyError):
        return f"missing field {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or "cannot read"
    return str(exc)[:120]


# ---- what the server publishes and signs with ----

@dataclass(frozen=True)
class KeyRing:
    """An immutable snapshot: swapped whole when keys/ changes, so readers never see half a change."""
    keys: tuple[SigningKey, ...]
    signing: SigningKey | None
    jwks_bytes: bytes
    jwks_etag: str
    keyset: jwk.KeySet = dataclasses.field(repr=False, compare=False)  # public keys, to read our own tokens
    algorithms: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    @classmethod
    def build(cls, keys: Sequence[SigningKey], problems: Sequence[str] = ()) -> KeyRing:
        order = {"current": 0, "next": 1, "retired": 2}
        published = sorted(keys, key=lambda k: (order[k.state], -k.created_at))
        document = {"keys": [k.public_jwk() for k in published]}
        body = json.dumps(document, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        algorithms = tuple(sorted({k.alg for k in published}))
        key_set = jwk.KeySet([jwk.import_key(d) for d in document["keys"]])
        return cls(tuple(published), current_key(keys), body, etag, key_set, algorithms, tuple(problems))

    def by_kid(self, kid: str) -> SigningKey | None:
        return next((k for k in self.keys if k.kid == kid), None)
