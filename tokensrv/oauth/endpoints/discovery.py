"""RFC 8414 authorization server metadata and OpenID Connect Discovery 1.0 §3.

Served as pre-serialised bytes, built once per set of claim rules: it changes only with the
settings and with the claim rules in effect (oauth/live_rules.py: a new document in the store
is a new ClaimRules object, so a new entry of the cache below).
"""
from __future__ import annotations

import json
from typing import Any

from tokensrv.claims import ClaimRules
from tokensrv.config import Settings
from tokensrv.oauth.auth_methods import ACR_MFA, ACR_PASSWORD
from tokensrv.verify.dpop import ALGORITHMS as DPOP_ALGORITHMS

PATHS = {
    "authorization_endpoint": "/oauth2/authorize",
    "token_endpoint": "/oauth2/token",
    "revocation_endpoint": "/oauth2/revoke",
    "introspection_endpoint": "/oauth2/introspect",
    "userinfo_endpoint": "/oauth2/userinfo",
    "end_session_endpoint": "/oauth2/logout",
    "device_authorization_endpoint": "/oauth2/device_authorization",  # RFC 8628 §4
    "jwks_uri": "/.well-known/jwks.json",
    "pushed_authorization_request_endpoint": "/oauth2/par",  # RFC 9126 §5
}
# client_secret_jwt is not among them: secrets are stored as digests (oauth/clients/assertion.py)
CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
ASSERTION_ALGORITHMS = ["RS256", "PS256", "ES256", "EdDSA"]  # = client_assertion.SIGNING_ALGORITHMS


def metadata(settings: Settings, signing_algorithms: list[str], rules: ClaimRules) -> dict[str, Any]:
    issuer = settings.issuer
    doc: dict[str, Any] = {"issuer": issuer}
    doc.update({name: issuer + path for name, path in PATHS.items()})
    doc.update({
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password",
                                  "urn:ietf:params:oauth:grant-type:device_code",
                                  "urn:ietf:params:oauth:grant-type:token-exchange"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,  # RFC 9207
        "scopes_supported": rules.scope_names,  # built-in, standard and custom (tokensrv/claims.py)
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algorithms,
        # "none": a public client (PKCE) names itself with client_id; introspection needs a secret
        "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        "token_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "revocation_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
        "revocation_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "introspection_endpoint_auth_methods_supported": CLIENT_AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": ASSERTION_ALGORITHMS,
        "require_pushed_authorization_requests": settings.require_par,  # RFC 9126 §5
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "at_hash",
                             "amr", "acr", *rules.claim_names],
        # how a browser sign-in can end (RFC 8176): with a password, then a TOTP code or a passkey, or a
        # passkey alone (hwk, or swk if synced; user: verified by it), unless MFA is off
        "amr_values_supported": ["pwd"] if settings.mfa == "off" else ["pwd", "otp", "hwk", "swk", "user", "mfa"],
        "acr_values_supported": [ACR_PASSWORD] if settings.mfa == "off" else [ACR_PASSWORD, ACR_MFA],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": True,  # OIDC Core §5.5 (oauth/claims_request.py, release.py)
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": True,  # OIDC Back-Channel Logout 1.0 §2.1
        "backchannel_logout_session_supported": True,  # logout tokens carry sid; ID tokens too
        "dpop_signing_alg_values_supported": list(DPOP_ALGORITHMS),  # RFC 9449 §5.1
    })
    if settings.registration_enabled:  # RFC 8414 §2: only when there is one
        doc["registration_endpoint"] = issuer + "/oauth2/register"
    return doc


_built: tuple[Settings, ClaimRules, bytes] | None = None  # the last document, by its inputs' identity


def metadata_bytes(settings: Settings, rules: ClaimRules) -> bytes:
    """Built again only when the settings or the rules in effect are other objects: compared by
    identity, not hashed (hashing the settings cost more than serving the answer)."""
    global _built
    built = _built
    if built is not None and built[0] is settings and built[1] is rules:
        return built[2]
    algorithms = sorted({"RS256", settings.key_algorithm})
    body = json.dumps(metadata(settings, algorithms, rules), separators=(",", ":")).encode()
    _built = (settings, rules, body)
    return body
