"""The store's key names are the layout on disk (a change needs an upgrade path: store/upgrade.py):
pinned here, once, as an earlier release wrote them. And they are spelled in one module."""
from __future__ import annotations

import re
from pathlib import Path

import tokensrv
from tokensrv.store import keyspace
from tokensrv.verify import mirror

LAYOUT = {
    keyspace.client("c1"): "tokensrv:client:c1", keyspace.CLIENTS: "tokensrv:clients",
    keyspace.user("s1"): "tokensrv:user:s1", keyspace.USERS: "tokensrv:users",
    keyspace.username("Alice"): "tokensrv:username:alice", keyspace.family("f1"): "tokensrv:rf:f1",
    keyspace.FEED: "tokensrv:revocations",
    keyspace.deny("jti", "j1"): "tokensrv:deny:{tokensrv:revocations}:jti:j1",
    keyspace.ended("s1"): "tokensrv:ended:s1", keyspace.lock("keys"): "tokensrv:lock:keys",
    keyspace.failures("login:user:a"): "tokensrv:rl:login:user:a", keyspace.bucket("token:c1"): "tokensrv:tb:token:c1",
    keyspace.browser_session("d"): "tokensrv:sso:d", keyspace.pending_login("r"): "tokensrv:authreq:r",
    keyspace.code("d"): "tokensrv:code:d", keyspace.device("d"): "tokensrv:device:d",
    keyspace.user_code("d"): "tokensrv:usercode:d", keyspace.pushed_request("d"): "tokensrv:par:d",
    keyspace.initial_token("d"): "tokensrv:iat:d", keyspace.assertion("d"): "tokensrv:assertion:d",
    keyspace.dpop_proof("d"): "tokensrv:dpop:jti:d", keyspace.DPOP_NONCE_SECRET: "tokensrv:dpop:nonce-secret",
    keyspace.LAYOUT: "tokensrv:layout", keyspace.CLIENT_CHANGES: "tokensrv:client-changes",
    keyspace.rp_sessions("s1"): "tokensrv:rp-sessions:s1",
    keyspace.user_sessions("s1"): "tokensrv:user-sso:s1", keyspace.session_clients("i1"): "tokensrv:sso-apps:i1",
    keyspace.user_families("s1"): "tokensrv:user-rf:s1",
    keyspace.second_factor("s1"): "tokensrv:mfa:s1", keyspace.second_factor_setup("s1"): "tokensrv:mfa-setup:s1",
    keyspace.passkeys("s1"): "tokensrv:passkeys:s1", keyspace.passkey_owner("c1"): "tokensrv:passkey-owner:c1",
    keyspace.passkey_challenge("d"): "tokensrv:passkey-challenge:d", keyspace.consents("s1"): "tokensrv:consents:s1",
    keyspace.LOGOUT_QUEUE: "tokensrv:bcl:{tokensrv:backchannel}:queue",
    keyspace.LOGOUT_RETRIES: "tokensrv:bcl:{tokensrv:backchannel}:retry",
    keyspace.LEGACY_DENY_PREFIX + "jti:j1": "tokensrv:deny:jti:j1",
}


def test_every_key_name_is_the_one_earlier_releases_wrote():
    assert {built: built for built in LAYOUT} == LAYOUT


def test_the_verifiers_names_are_the_stores():
    assert (keyspace.FEED, keyspace.DENY_PREFIX) == (mirror.FEED, mirror.DENY_PREFIX)


def test_the_key_prefix_is_spelled_in_the_keyspace_and_the_verifier_only():
    folders = {Path(entry) for entry in tokensrv.__path__ if Path(entry).is_dir()}  # a namespace: server, verify/
    # urn:tokensrv:acr:… (oauth/auth_methods.py) and the admin API's scope tokensrv:admin are no keys
    key = re.compile(r"(?<!urn:)tokensrv:(?!admin\b)[a-z{*]")
    spelled = {str(p.relative_to(folder)) for folder in folders for p in folder.rglob("*")
               if p.suffix in (".py", ".lua") and key.search(p.read_text(encoding="utf-8"))}
    assert spelled == {"store/keyspace.py", "verify/mirror.py"}
