"""Every store key's name, built here and nowhere else (the verifier's feed and deny-list, which
downstream services read, are named by tokensrv.verify.mirror, the lower layer: imported here).
The names are the layout on disk: a change needs its upgrade path (store/upgrade.py).

Key layout (each key with a TTL unless it is configuration):
  tokensrv:client:<client_id>     JSON client record          tokensrv:clients   set of ids
  tokensrv:user:<sub>             JSON user record            tokensrv:users     set of subs
  tokensrv:username:<casefolded>  -> sub (uniqueness)
  tokensrv:rf:<family_id>         list: one refresh family (positions: lua/family.lua), with its live
                                  token's digest and its access tokens' jtis
  tokensrv:revocations            Stream: the revocation feed verifiers follow
  tokensrv:deny:{tokensrv:revocations}:jti:<jti>  deny-list, until the token's exp
  tokensrv:deny:{tokensrv:revocations}:sid:<sid>  deny-list, for the longest token lifetime
  tokensrv:deny:{tokensrv:revocations}:sub:<sub>  -> not-before (epoch s), for the longest token lifetime
  tokensrv:ended:<sid>            an SSO session ended (logout), for the refresh family lifetime
  tokensrv:lock:<name>            mutual exclusion between instances (key rotation)
  tokensrv:rl:<kind>:<id>         failure counters for rate limiting
  tokensrv:tb:<kind>:<id>         token buckets for rate limiting (lua/take_token.lua)
  tokensrv:sso:<digest>           an SSO session, by the SHA-256 of its cookie
  tokensrv:user-sso:<sub>         sorted set: the user's session digests, scored by their absolute end
  tokensrv:sso-apps:<sid>         set: the client_ids a session issued codes to (the account page)
  tokensrv:user-rf:<sub>          sorted set: the user's refresh family ids, scored by their absolute end
  tokensrv:authreq:<id>           an authorization request waiting for the login page
  tokensrv:code:<digest>          an authorization code, by its SHA-256; then its replay marker
  tokensrv:device:<digest>        a device authorization (RFC 8628), by its device code's SHA-256
  tokensrv:usercode:<digest>      -> that digest, by the user code's SHA-256 (store/device.py)
  tokensrv:par:<digest>           a pushed authorization request (RFC 9126), by the SHA-256 of
                                  its client_id and request_uri, until it is used or expires
  tokensrv:iat:<digest>           an initial access token's uses left (store/clients.py)
  tokensrv:assertion:<digest>     a client assertion's jti, spent (RFC 7523 §3), until its exp
  tokensrv:dpop:jti:<digest>      a DPoP proof seen at the token endpoint or userinfo, for its window
  tokensrv:dpop:nonce-secret      what DPoP server nonces are derived from (TOKENSRV_DPOP_NONCE=on)
  tokensrv:layout                 which conversions of earlier layouts are done (store/upgrade.py)
  tokensrv:client-changes         pub/sub channel: a client id whenever that client is added, changed or removed
  tokensrv:claim-rules            JSON: the claim rules document and its version (store/claim_rules.py); no TTL
  tokensrv:claim-rules-changes    pub/sub channel: the document's new version whenever it changes
  tokensrv:mfa:<sub>              hash: the user's TOTP secret, last used time-step, recovery code
                                  digests (store/mfa.py); no TTL
  tokensrv:mfa-setup:<sub>        a TOTP secret shown at enrolment, until confirmed or expired
  tokensrv:passkeys:<sub>         hash: the user's passkeys, their sign counters and last uses
                                  (store/passkeys.py); no TTL
  tokensrv:passkey-owner:<id>     -> sub, by credential id (discoverable sign-in)
  tokensrv:passkey-challenge:<digest>  a WebAuthn ceremony's challenge, until used or expired
  tokensrv:consents:<sub>         hash: client_id -> the scopes the user allowed it, and when
                                  (store/consents.py); no TTL
  tokensrv:rp-sessions:<sub>      back-channel logout: which clients hold tokens of which session
  tokensrv:bcl:{tokensrv:backchannel}:queue, :retry  the delivery queue (store/backchannel.py)
  tokensrv:managed:clients, :users  hash: what `tokensrv apply` manages (store/managed.py); no TTL
"""
from __future__ import annotations

from tokensrv.verify.mirror import DENY_PREFIX, FEED

__all__ = ["DENY_PREFIX", "FEED"]  # the verifier's names, as the store uses them

PREFIX = "tokensrv:"

# ---- configuration and channels ----
CLIENTS = PREFIX + "clients"
USERS = PREFIX + "users"
LAYOUT = PREFIX + "layout"
CLIENT_CHANGES = PREFIX + "client-changes"  # processes caching client records listen here (store/cache.py)
CLAIM_RULES = PREFIX + "claim-rules"  # scopes and claim mappings, followed by every process
CLAIM_RULES_CHANGES = PREFIX + "claim-rules-changes"  # on the client cache's subscription (store/cache.py)
DPOP_NONCE_SECRET = PREFIX + "dpop:nonce-secret"
LEGACY_DENY_PREFIX = PREFIX + "deny:"  # the deny-list of earlier releases (store/upgrade.py)

# ---- prefixes a Lua script or a scan needs whole ----
USER_PREFIX = PREFIX + "user:"
ENDED_PREFIX = PREFIX + "ended:"  # SSO sessions ended by logout: their refresh families are refused
# writes no answer promises (store/durable.py): failure counters, token buckets, locks
UNPROMISED_PREFIXES = (PREFIX + "rl:", PREFIX + "tb:", PREFIX + "lock:")

# ---- back-channel logout: the two queue keys share a hash tag (one Cluster slot) ----
_BACKCHANNEL_TAG = "{" + PREFIX + "backchannel}"
LOGOUT_QUEUE = PREFIX + "bcl:" + _BACKCHANNEL_TAG + ":queue"
LOGOUT_RETRIES = PREFIX + "bcl:" + _BACKCHANNEL_TAG + ":retry"


def deny(kind: str, value: str) -> str:
    """The deny-list key of a `jti`, `sid`, `sub` or `kid` revocation (in the feed's slot)."""
    return f"{DENY_PREFIX}{kind}:{value}"


def client(client_id: str) -> str:
    return PREFIX + "client:" + client_id


def user(sub: str) -> str:
    return USER_PREFIX + sub


def username(name: str) -> str:
    """Usernames are unique regardless of case."""
    return PREFIX + "username:" + name.casefold()


def family(family_id: str) -> str:
    return PREFIX + "rf:" + family_id


def ended(sid: str) -> str:
    return ENDED_PREFIX + sid


def lock(name: str) -> str:
    return PREFIX + "lock:" + name


def failures(key: str) -> str:
    """A rate limit's failure counter, `key` being "<kind>:<id>"."""
    return PREFIX + "rl:" + key


def bucket(key: str) -> str:
    """A rate limit's token bucket, `key` being "<kind>:<id>"."""
    return PREFIX + "tb:" + key


def browser_session(digest: str) -> str:
    return PREFIX + "sso:" + digest


def user_sessions(sub: str) -> str:
    return PREFIX + "user-sso:" + sub


def session_clients(sid: str) -> str:
    return PREFIX + "sso-apps:" + sid


def user_families(sub: str) -> str:
    return PREFIX + "user-rf:" + sub


def pending_login(request_id: str) -> str:
    return PREFIX + "authreq:" + request_id


def code(digest: str) -> str:
    return PREFIX + "code:" + digest


def pushed_request(digest: str) -> str:
    return PREFIX + "par:" + digest


def assertion(digest: str) -> str:
    return PREFIX + "assertion:" + digest


def dpop_proof(digest: str) -> str:
    return PREFIX + "dpop:jti:" + digest


def device(digest: str) -> str:
    return PREFIX + "device:" + digest


def user_code(digest: str) -> str:
    return PREFIX + "usercode:" + digest


def initial_token(digest: str) -> str:
    return PREFIX + "iat:" + digest


def rp_sessions(sub: str) -> str:
    return PREFIX + "rp-sessions:" + sub


def second_factor(sub: str) -> str:
    return PREFIX + "mfa:" + sub


def second_factor_setup(sub: str) -> str:
    return PREFIX + "mfa-setup:" + sub


def passkeys(sub: str) -> str:
    return PREFIX + "passkeys:" + sub


def passkey_owner(credential_id: str) -> str:
    return PREFIX + "passkey-owner:" + credential_id


def passkey_challenge(digest: str) -> str:
    return PREFIX + "passkey-challenge:" + digest


def consents(sub: str) -> str:
    return PREFIX + "consents:" + sub


def managed(kind: str) -> str:
    """What `tokensrv apply` manages: kind is "clients" or "users" (store/managed.py)."""
    return PREFIX + "managed:" + kind
