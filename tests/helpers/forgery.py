"""Forged JWTs of every known class, built from a real token of the server and its public key.

Each forgery keeps the real claims (right iss, aud, exp), so only the forged part can make it fail.
"""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.helpers.verify import Signer, b64, segment


@dataclass(frozen=True)
class Material:
    """What an attacker knows: a real token, and the server's public key."""
    token: str
    public_key: rsa.RSAPublicKey
    public_jwk: dict[str, Any]
    kid: str
    attack_url: str  # a loopback listener that counts every request made to it

    @property
    def header(self) -> dict[str, Any]:
        return dict(json.loads(_unb64(self.token.split(".")[0])))

    @property
    def claims(self) -> dict[str, Any]:
        return dict(json.loads(_unb64(self.token.split(".")[1])))


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{segment(header)}.{segment(claims)}"


def hs256(m: Material, secret: bytes) -> str:
    """CVE-2015-9235: the public key used as an HMAC secret."""
    signing_input = unsigned({**m.header, "alg": "HS256"}, m.claims)
    return signing_input + "." + b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def hmac_secrets(m: Material) -> dict[str, bytes]:
    """Every encoding of our public key an HMAC library might be handed."""
    pem = m.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    pkcs1 = m.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    n = m.public_key.public_numbers().n
    return {
        "pem": pem, "pem-stripped": pem.strip(), "pem-pkcs1": pkcs1,
        "der": m.public_key.public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo),
        "jwk-json": json.dumps(m.public_jwk).encode(),
        "jwk-json-compact": json.dumps(m.public_jwk, separators=(",", ":")).encode(),
        "n-bytes": n.to_bytes((n.bit_length() + 7) // 8, "big"),
        "n-b64url": m.public_jwk["n"].encode(),
    }


def attacker_signed(m: Material, **header: Any) -> str:
    """Signed by the attacker's own RSA key, with whatever header claims to make it trusted."""
    attacker = Signer("RS256")
    header = {k: (v(attacker) if callable(v) else v) for k, v in header.items()}
    return attacker.sign(m.claims, typ=m.header.get("typ"), **{"kid": m.kid, **header})


def self_signed_cert(attacker: Signer) -> str:
    key = attacker.key.private_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tokensrv")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


def _reencode_signature(m: Material, encode: Callable[[bytes], str]) -> str:
    head, body, sig = m.token.split(".")
    return f"{head}.{body}.{encode(_unb64(sig))}"


def forgeries(m: Material) -> dict[str, str]:
    """name -> forged token."""
    head, body, sig = m.token.split(".")
    forged: dict[str, str] = {}
    for alg in ("none", "None", "NONE", "nOnE"):  # RFC 8725 §2.1, CVE-2015-2951
        forged[f"alg-{alg}"] = unsigned({**m.header, "alg": alg}, m.claims) + "."
        forged[f"alg-{alg}-with-signature"] = unsigned({**m.header, "alg": alg}, m.claims) + "." + sig
    for name, secret in hmac_secrets(m).items():  # RFC 8725 §2.1/§3.1, CVE-2015-9235
        forged[f"hs256-{name}"] = hs256(m, secret)
    forged["attacker-key-our-kid"] = attacker_signed(m)
    forged["embedded-jwk"] = attacker_signed(m, jwk=lambda a: a.public_jwk())  # CVE-2018-0114
    forged["embedded-jwk-own-kid"] = attacker_signed(m, kid=lambda a: a.kid, jwk=lambda a: a.public_jwk())
    forged["jku"] = attacker_signed(m, jku=m.attack_url + "/jwks.json")  # RFC 8725 §3.10
    forged["jku-own-kid"] = attacker_signed(m, kid=lambda a: a.kid, jku=m.attack_url + "/jwks.json")
    forged["x5u"] = attacker_signed(m, x5u=m.attack_url + "/cert.pem")
    forged["x5c"] = attacker_signed(m, x5c=lambda a: [self_signed_cert(a)])
    forged["no-kid"] = attacker_signed(m, kid=None)
    forged["stripped-signature"] = f"{head}.{body}."
    forged["no-signature-part"] = f"{head}.{body}"
    forged["truncated"] = m.token[:-12]
    forged["tampered-claims"] = f"{head}.{segment({**m.claims, 'sub': 'admin'})}.{sig}"
    forged["padded-signature"] = _reencode_signature(m, lambda s: base64.urlsafe_b64encode(s).decode())
    forged["std-alphabet-signature"] = _reencode_signature(
        m, lambda s: base64.b64encode(s).decode().rstrip("="))
    forged["padded-payload"] = f"{head}.{body}{'=' * (-len(body) % 4) or '=='}.{sig}"
    forged["json-serialised"] = json.dumps({"protected": head, "payload": body, "signature": sig})
    forged["json-flattened-general"] = json.dumps(
        {"payload": body, "signatures": [{"protected": head, "signature": sig}]})
    forged["oversized"] = f"{head}.{segment({**m.claims, 'pad': 'x' * (1 << 20)})}.{sig}"
    forged["four-parts"] = m.token + "." + sig
    forged["dots"] = ".."
    return forged


def with_claims(sign: Callable[[dict[str, Any]], str], claims: dict[str, Any]) -> dict[str, str]:
    """Tokens signed with the real key whose claims have the wrong types (robustness, RFC 7519 §4.1)."""
    wrong: dict[str, Any] = {
        "exp-string": {"exp": str(claims["exp"])}, "exp-float-string": {"exp": "1e20"},
        "exp-bool": {"exp": True}, "exp-object": {"exp": {"$gt": 0}},
        "iat-string": {"iat": "yesterday"}, "iat-list": {"iat": [1]},
        "aud-object": {"aud": {"web": True}}, "aud-int": {"aud": 7}, "aud-list-of-lists": {"aud": [["web"]]},
        "sub-int": {"sub": 42}, "sub-object": {"sub": {"id": 1}}, "jti-list": {"jti": ["a"]},
        "scope-list": {"scope": ["openid"]}, "sid-object": {"sid": {"x": 1}},
        "iss-list": {"iss": [claims["iss"]]}, "nbf-string": {"nbf": "later"},
        "auth_time-string": {"auth_time": "now"}, "roles-string": {"roles": "admin"},
    }
    return {name: sign({**claims, **change}) for name, change in wrong.items()}
