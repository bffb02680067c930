"""Passkeys without a browser: JSON posts to the passkey endpoints, and an authenticator made by
the test (a P-256 key) whose assertions carry chosen flags and counters."""
from __future__ import annotations

import base64
import hashlib
import json

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def client_data(kind: str, challenge: str, origin: str) -> str:
    return b64(json.dumps({"type": kind, "challenge": challenge, "origin": origin}).encode())


async def post_json(client, path: str, body: object, raw: bytes | None = None, **headers: str):
    data = raw if raw is not None else json.dumps(body).encode()
    return await client.post(path, data=data, headers={"Content-Type": "application/json", **headers})


async def assert_400(resp) -> str:
    assert resp.status == 400, (resp.status, await resp.text())
    body = await resp.json()
    assert body["error"] == "invalid_request" and body["error_description"], body
    return body["error_description"]


class Authenticator:
    """A P-256 passkey made by the test (the COSE key and signatures as an authenticator makes
    them, WebAuthn §6.1), to send assertions with chosen flags and counters."""

    def __init__(self, rp_id: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.rp_id = rp_id

    def cose(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def assertion(self, credential_id: str, challenge: str, origin: str, user_verified: bool, count: int,
                  user_handle: bytes) -> dict[str, object]:
        flags = 0x01 | (0x04 if user_verified else 0)  # UP, and UV when verified
        data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags]) + count.to_bytes(4, "big")
        client = json.dumps({"type": "webauthn.get", "challenge": challenge, "origin": origin}).encode()
        signature = self.key.sign(data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return {"id": credential_id, "rawId": credential_id, "type": "public-key",
                "response": {"clientDataJSON": b64(client), "authenticatorData": b64(data),
                             "signature": b64(signature), "userHandle": b64(user_handle)}}
