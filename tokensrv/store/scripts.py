"""The store's Lua scripts, read once at import from the package's store/lua/*.lua files.

A script is its own file, preceded by the fragments it names here (explicitly, in order: a Lua
`local function` must be declared before the code that calls it). Fragments define functions and
run nothing: base64url.lua (a decoder, for the upgrade's digests), family.lua (the refresh family
list's positions and helpers), family_upgrade.lua (the earlier family layout, a hash, rewritten on
first touch: to drop it, delete it and base64url.lua, their names in FAMILY below, and make the
scripts' `family_list(f, last)` calls plain LRANGEs).
"""
from __future__ import annotations

from importlib import resources

_LUA = resources.files(__package__ or "tokensrv.store") / "lua"

SOURCES: dict[str, str] = {}  # every script by its file name: what tests load into Valkey
FRAGMENTS: set[str] = set()


def _read(name: str) -> str:
    return (_LUA / f"{name}.lua").read_text(encoding="utf-8")


def _script(name: str, *fragments: str) -> str:
    FRAGMENTS.update(fragments)
    SOURCES[name] = "".join(_read(part) + "\n" for part in (*fragments, name))
    return SOURCES[name]


FAMILY = ("base64url", "family", "family_upgrade")  # a refresh family's helpers (store/refresh.py)

# refresh families (store/refresh.py), revocation (store/denylist.py)
ROTATE = _script("rotate", *FAMILY)
READ_FAMILY = _script("read_family", *FAMILY)
DELETE_FAMILY = _script("delete_family", *FAMILY)
REVOKE = _script("revoke")
# locks and rate limits (store/guards.py)
RELEASE_LOCK = _script("release_lock")
DECREMENT_IF_PRESENT = _script("decrement_if_present")
TAKE_TOKEN = _script("take_token")
# authorization codes (store/sessions.py)
TAKE_CODE = _script("take_code")
RECORD_CODE = _script("record_code")
# back-channel logout (store/backchannel.py)
RP_SESSIONS_RECORD = _script("rp_sessions_record")
RP_SESSIONS_TAKE = _script("rp_sessions_take")
LOGOUT_ENQUEUE = _script("logout_enqueue")
LOGOUT_FINISH = _script("logout_finish")
LOGOUT_PROMOTE = _script("logout_promote")
# device authorization (store/device.py)
DEVICE_POLL = _script("device_poll")
DEVICE_DECIDE = _script("device_decide")
# dynamic registration (store/clients.py)
USE_INITIAL_TOKEN = _script("use_initial_token")
# second factors (store/mfa.py)
MFA_USE_STEP = _script("mfa_use_step")
# passkeys (store/passkeys.py)
PASSKEY_USE = _script("passkey_use")
