"""RFC 9449 DPoP at tokensrv's own endpoints: the token endpoint (§5), pushed authorization
requests (§10.1) and userinfo (§7).

The proof itself is checked by tokensrv.verify.dpop, the code every resource server runs too;
here is what needs the store: the `jti` replay check (one SET NX in Valkey, so a proof is accepted
once by any instance) and server nonces (§8).

Nonces (TOKENSRV_DPOP_NONCE=on) are derived, not stored: HMAC-SHA256 of the number of the current
NONCE_PERIOD with a secret every instance reads from Valkey (made once by the first that needs
it). A nonce is accepted in its period and the next, so a client that has just been given one has
at least NONCE_PERIOD seconds to use it; every instance computes the same one, with no store write
per nonce. The secret and the nonces are never logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from tokensrv.errors import InvalidDPoPProof, InvalidGrant, UseDPoPNonce
from tokensrv.oauth import Provider
from tokensrv.store import Client
from tokensrv.verify import dpop as proofs
from tokensrv.verify.errors import InvalidDPoPProof as BadProof

NONCE_PERIOD = 300  # seconds
TOKEN_PATH = "/oauth2/token"


async def token_request_key(p: Provider, client: Client, headers: Sequence[str]) -> str | None:
    """The thumbprint of the key a token request proves (its access token will be bound to it),
    or None for a request without a DPoP header (refused for a client registered with
    dpop_bound_access_tokens)."""
    if not headers:
        if client.dpop_bound_access_tokens:
            raise InvalidDPoPProof(f"client {client.client_id!r} must send a DPoP proof",
                                   description="a DPoP proof is required for this client")
        return None
    return await proven_key(p, headers, TOKEN_PATH)


async def proven_key(p: Provider, headers: Sequence[str], path: str) -> str:
    """The thumbprint of the key a proof for a POST to the issuer's `path` proves, checked as every
    client-to-server proof is (§4.3; nonce when TOKENSRV_DPOP_NONCE=on): the token endpoint's, and
    the PAR endpoint's (§10.1)."""
    proof = await check(p, headers, "POST", path, nonce_required=p.settings.dpop_nonce == "on")
    return proof.jkt


async def check(p: Provider, headers: Sequence[str], method: str, path: str, *,
                nonce_required: bool = False, access_token: str | None = None) -> proofs.Proof:
    """A valid, new proof for `method` at the issuer's `path`: the URL clients use is the issuer's
    (TOKENSRV_ISSUER), whatever a proxy in front made of the request."""
    if len(headers) != 1:
        raise InvalidDPoPProof("DPoP header repeated", description="send exactly one DPoP header")
    window = p.settings.dpop_iat_window
    now = p.now()
    try:
        proof = proofs.check_proof(headers[0], method=method, url=p.settings.issuer + path, now=now,
                                   window=window, access_token=access_token)
    except BadProof as exc:
        raise InvalidDPoPProof(exc.detail) from None
    if nonce_required:
        await _check_nonce(p, proof.nonce)
    # acceptable until iat + window: the jti need not be remembered any longer
    if not await p.store.nonces.dpop_proof_fresh(proof.jkt, proof.jti, int(proof.iat + window - now) + 1):
        raise InvalidDPoPProof("DPoP proof replayed")
    return proof


async def _check_nonce(p: Provider, nonce: str | None) -> None:
    secret = await _secret(p)
    period = p.now() // NONCE_PERIOD
    if nonce is None or not any(hmac.compare_digest(nonce, _nonce(secret, n)) for n in (period, period - 1)):
        raise UseDPoPNonce(_nonce(secret, period), "DPoP proof without a current nonce")


async def current_nonce(p: Provider) -> str | None:
    """The nonce to send in DPoP-Nonce now, when nonces are on."""
    if p.settings.dpop_nonce != "on":
        return None
    return _nonce(await _secret(p), p.now() // NONCE_PERIOD)


async def _secret(p: Provider) -> bytes:
    if p.dpop_nonce_secret is None:
        p.dpop_nonce_secret = (await p.store.nonces.dpop_nonce_secret()).encode()
    return p.dpop_nonce_secret


def _nonce(secret: bytes, period: int) -> str:
    digest = hmac.new(secret, f"dpop-nonce {period}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def check_code_binding(dpop_jkt: str | None, jkt: str | None) -> None:
    """RFC 9449 §10: a code requested with `dpop_jkt` is redeemed only with a proof by that key."""
    if dpop_jkt is not None and jkt != dpop_jkt:
        raise InvalidGrant("the code is bound to another DPoP key" if jkt else
                           "the code is bound to a DPoP key: the request has no proof")
