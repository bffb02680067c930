"""Administration of clients, users and keys: what an operator does, with no argument parsing.

Each function takes a Provider and plain values, returns a JSON-able result, and raises AdminError
with a one-line message for bad input.
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tokensrv.claims import ClaimsError, check_attributes
from tokensrv.config import redact_url
from tokensrv.keys.manager import LockBusy
from tokensrv.keys.signing import SigningKey, next_step_due, planned_steps
from tokensrv.oauth import Provider
from tokensrv.oauth.browser.account import consents
from tokensrv.oauth.clients.changes import MAX_OVERLAP, changed_client, metadata_of, rotated_secret
from tokensrv.oauth.clients.fields import ClientMetadata, MetadataChange
from tokensrv.oauth.clients.metadata import MetadataError, RegistrationError, new_client, secret_digest
from tokensrv.oauth.endpoints import introspection, registration, revocation
from tokensrv.oauth.endpoints.revocation import revoke_user
from tokensrv.oauth.own_tokens import parse_refresh_token, read_own_jwt
from tokensrv.passwords import password_problem
from tokensrv.store import Client, Conflict, Revocation, User


class AdminError(Exception):
    """Bad input to an admin command: one line, safe to print."""


class Missing(AdminError):
    """What the command names does not exist (the admin API: 404)."""


class Exists(AdminError):
    """What the command would add exists already (the admin API: 409)."""


def client_view(client: Client) -> dict[str, Any]:
    view = dataclasses.asdict(client)  # every field, defaults included (to_json leaves some out)
    view.pop("secret_digest")
    view.pop("registration_token_digest")
    view.pop("previous_secret_digest")
    expires = view.pop("previous_secret_expires_at")  # the rotated-out secret works until then
    view["previous_secret_expires_at"] = expires if client.previous_secret_digest else None
    view["type"] = "public" if client.is_public else "confidential"
    view["registered"] = client.registered  # by the client itself, over RFC 7591
    view["asks_consent"] = client.asks_consent  # the consent page: registered, or consent_required
    return view


async def add_client(p: Provider, client_id: str, metadata: ClientMetadata,
                     name_field: Callable[[str], str] = str, secret: str | None = None) -> dict[str, Any]:
    """A new client. Its errors name a metadata field as `name_field` spells it (the CLI: by its
    flag); by default as RFC 7591 names it. `secret`: the operator's (apply's secret_env), for a
    client that has one, instead of a generated one."""
    try:
        client, generated = new_client(client_id, metadata, now=p.now())
    except MetadataError as exc:  # named by the field at fault, as update_client's are
        message, flag = exc.spelled(name_field), name_field(exc.field)
        raise AdminError(message if flag in message else f"{flag}: {message}") from None
    except RegistrationError as exc:
        raise AdminError(str(exc)) from None
    if secret is not None and generated is not None:
        client, generated = replace(client, secret_digest=secret_digest(secret)), secret
    try:
        await p.store.clients.add_client(client)
    except Conflict as exc:
        raise Exists(str(exc)) from None
    result: dict[str, Any] = {"client_id": client.client_id, "client_secret": generated}
    if client.token_endpoint_auth_method == "private_key_jwt":
        result = {"client_id": client.client_id, "token_endpoint_auth_method": "private_key_jwt"}
    return result


async def mint_initial_token(p: Provider, ttl: int, uses: int) -> dict[str, Any]:
    """An initial access token for RFC 7591 registration (shown once; only its digest is kept)."""
    try:
        return await registration.mint_initial_token(p, ttl, uses)
    except RegistrationError as exc:
        raise AdminError(str(exc)) from None


async def get_client(p: Provider, client_id: str) -> Client:
    client = await p.store.clients.get_client(client_id)
    if client is None:
        raise Missing(f"no client {client_id!r}")
    return client


async def update_client(p: Provider, client_id: str, change: MetadataChange,
                        name_field: Callable[[str], str] = str) -> dict[str, Any]:
    """The client changed in place, checked as a new one is; its id and secret stay. Written
    atomically against the record as it is then (a concurrent update is never lost), and announced
    so every instance's cache drops the old record."""
    def edit(current: Client) -> Client:
        metadata = metadata_of(current)
        for field, value in change.missing(metadata):
            raise AdminError(f"{name_field(field).replace('--add-', '--remove-', 1)} {value!r}: "
                             f"client {client_id!r} has no such value")
        return changed_client(current, change.apply(metadata))
    try:
        updated = await p.store.clients.update_client(client_id, edit)
    except MetadataError as exc:
        message, flag = exc.spelled(name_field), name_field(exc.field)
        raise AdminError(message if flag in message else f"{flag}: {message}") from None
    except RegistrationError as exc:
        raise AdminError(str(exc)) from None
    if updated is None:
        raise Missing(f"no client {client_id!r}")
    return client_view(updated)


async def rotate_secret(p: Provider, client_id: str, overlap: int) -> dict[str, Any]:
    """A new secret (shown once; its digest kept); the old one accepted `overlap` more seconds."""
    if not 0 <= overlap <= MAX_OVERLAP:
        raise AdminError(f"the overlap must be 0 to {MAX_OVERLAP} seconds, got {overlap}")
    secret, now = secrets.token_urlsafe(32), p.now()
    try:
        updated = await p.store.clients.update_client(client_id, lambda c: rotated_secret(c, secret, now, overlap))
    except RegistrationError as exc:
        raise AdminError(str(exc)) from None
    if updated is None:
        raise Missing(f"no client {client_id!r}")
    if not overlap:  # the old secret stops at once: so do the tokens it got (with an overlap, they run out)
        await _end_own_tokens(p, client_id)
    return {"client_id": client_id, "client_secret": secret,
            "previous_secret_expires_at": updated.previous_secret_expires_at if overlap else None}


async def remove_client(p: Provider, client_id: str) -> None:
    if not await p.store.clients.remove_client(client_id):
        raise Missing(f"no client {client_id!r}")
    await _end_own_tokens(p, client_id)  # none revives should a client of that id be added again


async def _end_own_tokens(p: Provider, client_id: str) -> None:
    """The client's own access tokens (client_credentials: `sub` is its id) issued up to now, denied."""
    now = p.now()
    await p.store.denylist.revoke([Revocation("sub", client_id, now + p.settings.max_token_ttl, now)], now)


def user_view(user: User) -> dict[str, Any]:
    return {"sub": user.sub, "username": user.username, "email": user.email, "roles": list(user.roles),
            "groups": list(user.groups), "attributes": dict(user.attributes),
            "disabled": user.disabled, "created_at": user.created_at}


def check_password(password: str) -> None:
    problem = password_problem(password)
    if problem is not None:
        raise AdminError(problem)


def check_email(email: str | None) -> None:
    if email is not None and ("@" not in email or len(email) > 254 or not email.isprintable()):
        raise AdminError(f"malformed email address {email!r}")


def check_claims(user: User) -> User:
    """The user's attributes and groups within tokensrv/claims.py's bounds."""
    try:
        check_attributes(dict(user.attributes), user.groups)
    except ClaimsError as exc:
        raise AdminError(str(exc)) from None
    return user


def check_new_user(username: str, email: str | None, groups: Sequence[str], attributes: Mapping[str, str]) -> None:
    if not username or len(username) > 128 or not username.isprintable() or username != username.strip():
        raise AdminError(f"username {username!r} must be 1-128 printable characters, no outer spaces")
    check_email(email)
    try:
        check_attributes(dict(attributes), tuple(groups))
    except ClaimsError as exc:
        raise AdminError(str(exc)) from None


async def add_user(p: Provider, username: str, password: str | None, email: str | None, roles: Sequence[str],
                   groups: Sequence[str] = (), attributes: Mapping[str, str] | None = None) -> dict[str, Any]:
    """A new user. Without a password (`apply`), none can sign in with one until `user passwd` sets
    it: the empty hash is checked against the decoy (passwords.PasswordPool.check), never ok."""
    check_new_user(username, email, groups, attributes or {})
    user = User(sub=secrets.token_hex(16), username=username, password_hash="", email=email,
                roles=tuple(dict.fromkeys(roles)), created_at=p.now(), groups=tuple(dict.fromkeys(groups)),
                attributes=tuple(sorted((attributes or {}).items())))
    if password is not None:
        check_password(password)
        user = replace(user, password_hash=await p.passwords.hash(password))
    try:
        await p.store.users.add_user(user)
    except Conflict as exc:
        raise Exists(str(exc)) from None
    return user_view(user)


@dataclasses.dataclass(frozen=True)
class UserChange:
    """What `tokensrv user update` changes; the sub and username never do."""
    email: str | None = None
    unset_email: bool = False
    add_roles: tuple[str, ...] = ()
    remove_roles: tuple[str, ...] = ()
    add_groups: tuple[str, ...] = ()
    remove_groups: tuple[str, ...] = ()
    attributes: tuple[tuple[str, str], ...] = ()  # set (replacing a value)
    unset_attributes: tuple[str, ...] = ()

    def apply(self, user: User) -> User:
        attributes = {k: v for k, v in user.attributes if k not in self.unset_attributes}
        attributes.update(self.attributes)
        return replace(
            user, email=None if self.unset_email else self.email or user.email,
            roles=_edited(user.roles, self.add_roles, self.remove_roles),
            groups=_edited(user.groups, self.add_groups, self.remove_groups),
            attributes=tuple(sorted(attributes.items())))


def _edited(values: tuple[str, ...], added: tuple[str, ...], removed: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v for v in dict.fromkeys((*values, *added)) if v not in removed)


async def update_user(p: Provider, username: str, change: UserChange) -> dict[str, Any]:
    """Takes effect at the next token on every instance: grants and UserInfo read the record then."""
    check_email(change.email)
    user = await find_user(p, username)
    check_claims(change.apply(user))  # refused before anything is written
    updated = await p.store.users.update_user(user.sub, lambda now: check_claims(change.apply(now)))
    if updated is None:
        raise Missing(f"no user {username!r}")
    return user_view(updated)


async def find_user(p: Provider, username: str) -> User:
    user = await p.store.users.find_user(username)
    if user is None:
        raise Missing(f"no user {username!r}")
    return user


async def set_password(p: Provider, username: str, password: str) -> dict[str, Any]:
    """A new password ends every session and refresh family of the user."""
    user = await find_user(p, username)
    check_password(password)
    return user_view(await revoke_user(p, user, password_hash=await p.passwords.hash(password)))


async def set_disabled(p: Provider, username: str, disabled: bool) -> dict[str, Any]:
    user = await find_user(p, username)
    if disabled:
        return user_view(await revoke_user(p, user, disabled=True))
    # on the record as it is now: a password set meanwhile is kept
    enabled = await p.store.users.update_user(user.sub, lambda current: replace(current, disabled=False))
    return user_view(enabled or replace(user, disabled=False))


async def revoke_everywhere(p: Provider, username: str) -> dict[str, Any]:
    return user_view(await revoke_user(p, await find_user(p, username)))


async def second_factor_view(p: Provider, username: str) -> dict[str, Any]:
    """Whether the user has TOTP, since when, how many recovery codes are left (never the secret),
    and its passkeys (name, added, last used; never a key)."""
    user = await find_user(p, username)
    factor = await p.store.mfa.get_second_factor(user.sub)
    keys = await p.store.passkeys.list_passkeys(user.sub)
    return {"username": user.username, "sub": user.sub, "totp": factor is not None,
            "enrolled_at": factor.enrolled if factor else None,
            "recovery_codes_left": factor.recovery_left if factor else 0,
            "passkeys": [{"name": k.name, "created_at": k.created, "synced": k.synced,
                          "last_used_at": k.last_used or None} for k in keys]}


async def reset_second_factor(p: Provider, username: str) -> dict[str, Any]:
    """A lost phone: TOTP, recovery codes and passkeys go, and so does every session of the user
    (whoever holds the phone may hold a signed-in browser too). The next sign-in offers enrolment again."""
    user = await find_user(p, username)
    removed = await p.store.mfa.remove_second_factor(user.sub)
    passkeys = await p.store.passkeys.remove_all_passkeys(user.sub)
    await revoke_user(p, user)
    return {"username": user.username, "sub": user.sub, "removed": removed or passkeys > 0,
            "passkeys_removed": passkeys}


async def consents_view(p: Provider, username: str) -> list[dict[str, Any]]:
    """The applications a user allowed on the consent page: which scopes, since when."""
    user = await find_user(p, username)
    return [{"client_id": c.client_id, "scopes": " ".join(c.scopes), "granted_at": c.granted}
            for c in await p.store.consents.list_consents(user.sub)]


async def withdraw_consent(p: Provider, username: str, client_id: str) -> dict[str, Any]:
    """As the user's account page does: the consent goes, and the client's refresh tokens of the user."""
    user = await find_user(p, username)
    ended = await consents.withdraw(p, user, client_id)
    if ended is None:
        raise Missing(f"{username} has not allowed client {client_id!r}")
    return {"username": user.username, "sub": user.sub, "client_id": client_id, "withdrawn": True,
            "refresh_families_ended": ended}


async def remove_user(p: Provider, username: str) -> None:
    user = await find_user(p, username)
    await revoke_user(p, user)
    await p.store.mfa.remove_second_factor(user.sub)
    await p.store.passkeys.remove_all_passkeys(user.sub)
    await p.store.consents.remove_all_consents(user.sub)
    await p.store.users.remove_user(user)


async def revoke_key(p: Provider, kid: str) -> None:
    """A compromised key: out of the JWKS and out of signing at once, a fresh key promoted, and a
    `kid` event in the feed so verifiers drop it and reject every token it signed."""
    try:
        await p.keys.revoke(kid)
    except KeyError:
        raise Missing(f"no key {kid!r}") from None
    except LockBusy as exc:
        raise AdminError(str(exc)) from None
    now = p.now()
    await p.store.denylist.revoke([Revocation("kid", kid, now + p.settings.max_token_ttl, now)], now)


async def rotate_keys(p: Provider) -> None:
    try:
        await p.keys.rotate_now()
    except LockBusy as exc:
        raise AdminError(str(exc)) from None


def key_view(key: SigningKey) -> dict[str, Any]:
    return {"kid": key.kid, "alg": key.alg, "state": key.state, "created_at": key.created_at,
            "activated_at": key.activated_at, "retired_at": key.retired_at,
            "rotate_after": key.rotate_after}


# ---- tokens, admin side: the same logic as the HTTP endpoints, straight against the store ----

async def _holder(p: Provider, token: str) -> Client | None:
    """The client a token of ours was issued to: the ownership checks then pass as for its holder."""
    family_id = parse_refresh_token(token)
    if family_id is not None:
        found = await p.store.refresh.get_family(family_id)
        client_id = found[0].client_id if found else None
    else:
        claims = read_own_jwt(p, token)
        client_id = claims.get("client_id") if claims else None
    return await p.store.clients.get_client(str(client_id)) if client_id else None


async def introspect_token(p: Provider, token: str) -> dict[str, Any]:
    """RFC 7662's answer for any of our tokens (an operator may look at every client's)."""
    await p.keys.reload(force=True)
    client = await _holder(p, token)
    if client is None:
        return dict(introspection.INACTIVE)
    return await introspection.introspect(p, client, {"token": token})


async def revoke_token(p: Provider, token: str) -> dict[str, Any]:
    """RFC 7009 for any of our tokens: an access token's jti, or a refresh token's whole family."""
    before = await introspect_token(p, token)
    if not before["active"]:
        return {"revoked": False, "reason": "not an active token of this issuer (unknown, expired or revoked)"}
    client = await _holder(p, token)
    assert client is not None  # introspection found it a moment ago
    await revocation.revoke(p, client, {"token": token})
    return {"revoked": True, "token_type": before.get("token_type"), "client_id": before.get("client_id"),
            "sub": before.get("sub"), "jti": before.get("jti")}


async def status(p: Provider) -> dict[str, Any]:
    """What an operator checks first: the store, the keys and the schedule, the counts."""
    started = time.perf_counter()
    await p.store.ping()
    latency_ms = round((time.perf_counter() - started) * 1000, 2)
    await p.keys.reload(force=True)
    keys = p.keys.ring.keys
    due = next_step_due(keys, p.settings)
    upcoming = [(when, step) for when, step in planned_steps(keys, p.settings) if when == due]
    return {
        "store": {"url": redact_url(p.settings.redis_url), "reachable": True, "latency_ms": latency_ms},
        "keys": [{"kid": k.kid, "state": k.state, "alg": k.alg} for k in keys],
        "key_problems": list(p.keys.ring.problems),
        "next_rotation_step": None if due is None else {
            "step": upcoming[0][1].describe() if upcoming else None,
            "due_at": due, "in_seconds": max(0, due - p.now())},
        "clients": len(await p.store.clients.list_clients()),
        "users": len(await p.store.users.list_users()),
    }

