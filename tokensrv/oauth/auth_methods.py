"""How a user signed in, as tokens tell applications: RFC 8176 `amr` values and our `acr` levels.

`acr` names a level, not a method, so that an application can ask "at least this" and later
factors (passkeys) reach the same level: `urn:tokensrv:acr:pwd` (a password) and
`urn:tokensrv:acr:mfa` (a password and a second factor). A leaf module: discovery imports it.
"""
from __future__ import annotations

AMR_PASSWORD = ("pwd",)
AMR_TOTP = ("pwd", "otp", "mfa")  # a TOTP code or, in its place, a one-time recovery code
ACR_PASSWORD = "urn:tokensrv:acr:pwd"
ACR_MFA = "urn:tokensrv:acr:mfa"


def acr_of(amr: tuple[str, ...]) -> str:
    return ACR_MFA if "mfa" in amr else ACR_PASSWORD
