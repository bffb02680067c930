"""`tokensrv client add`'s flags: its parser and its command (both in cli/commands.py) read this
one table, so a new client field gets its flag here."""
from __future__ import annotations

import argparse
from typing import Any


def _required(value: str) -> bool:
    """--consent's one value (a bool field, spelt as the issue and the docs spell it)."""
    if value != "required":
        raise argparse.ArgumentTypeError(f"the only value is 'required', not {value!r}")
    return True


# `client add`'s flags, each setting the client-metadata field (its RFC 7591 name, a field of
# oauth/clients/fields.ClientMetadata) it is keyed by: the parser, the metadata read from the
# parsed arguments and the CLI's errors (a field named by its flag) all come from this table.
CLIENT_FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "public": ("--public", {"action": "store_true", "help": "no secret (browser and native apps)"}),
    "redirect_uris": ("--redirect-uri", {"action": "append", "default": [], "metavar": "URI", "help":
                      "where the authorization code is sent (repeatable; https, http only for loopback)"}),
    "grant_types": ("--grant-type", {"action": "append", "default": [], "help": "repeatable; device_code and "
                                     "token_exchange name the RFC 8628 and 8693 URNs"}),
    "scope": ("--scope", {"action": "append", "default": [], "help": "a scope it may ask for (repeatable)"}),
    "audience": ("--audience", {"help": "the aud of its access tokens (default: the client id)"}),
    "first_party": ("--first-party", {"action": "store_true", "help": "one of our own apps (the password "
                                      "grant is only for these)"}),
    "consent_required": ("--consent", {"type": _required, "default": False, "metavar": "required",
                         "help": "users allow the client on a consent page first, as for a registered client "
                         "(the only value: required; a first-party client never asks)"}),
    "dpop_bound_access_tokens": ("--dpop-bound", {"action": "store_true", "help": "every token request must "
                                                  "carry a DPoP proof (RFC 9449 dpop_bound_access_tokens)"}),
    "post_logout_redirect_uris": ("--post-logout-redirect-uri", {"action": "append", "default": [], "metavar":
                                  "URI", "help": "where logout may send the browser back (repeatable)"}),
    "token_endpoint_auth_method": ("--auth-method", {
        "choices": ("client_secret_basic", "private_key_jwt", "none"), "help": "how the client authenticates "
        "(default: client_secret_basic, which also accepts client_secret_post; none with --public)"}),
    "jwks": ("--jwks-file", {"metavar": "FILE", "help": "private_key_jwt: the client's public keys (a JWKS)"}),
    "jwks_uri": ("--jwks-uri", {"metavar": "URL", "help": "private_key_jwt: where the client publishes its JWKS"}),
    "require_pushed_authorization_requests": ("--require-par", {
        "action": "store_true", "help": "authorization requests must be pushed first (RFC 9126)"}),
    "require_mfa": ("--require-mfa", {"action": "store_true", "help": "every sign-in for this client needs a "
                    "second factor, enrolled then if need be (registration: require_mfa)"}),
    "exchange_audiences": ("--exchange-audience", {"action": "append", "default": [], "help": "an audience "
                           "this client may exchange tokens for (RFC 8693; repeatable)"}),
    "backchannel_logout_uri": ("--backchannel-logout-uri", {"metavar": "URL", "help": "where logout tokens "
                               "are POSTed when a session of this client ends (OIDC Back-Channel Logout; "
                               "https, http only for loopback)"}),
    "allowed_origins": ("--allowed-origin", {"action": "append", "default": [], "metavar": "ORIGIN", "help":
                        "a web origin (https://host[:port]) its browser app calls the token, revocation "
                        "and UserInfo endpoints from (CORS)"}),
    "client_name": ("--name", {"help": "what the login page calls the client"}),
    "logo_uri": ("--logo-uri", {"help": "an https image the login page shows"}),
    "policy_uri": ("--policy-uri", {"help": "the client's privacy policy, linked from the login page"}),
    "tos_uri": ("--tos-uri", {"help": "the client's terms of service, linked from the login page"}),
    "admin": ("--admin", {"action": "store_true", "help": "may call the admin API: its client_credentials tokens "
              "get scope tokensrv:admin when it asks (a confidential client only)"}),
}


def client_flag(field: str) -> str:
    """How the CLI names a client-metadata field: its flag (the field itself if it has none)."""
    return CLIENT_FLAGS[field][0] if field in CLIENT_FLAGS else field
