"""A client changed in place: `tokensrv client update` (its metadata, checked again as a new
client's is, by metadata.new_client) and `tokensrv client rotate-secret` (a new secret, the previous
one accepted for an overlap: metadata.secret_matches). The client id never changes, and the secret
only by a rotation."""
from __future__ import annotations

import dataclasses

from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import MetadataError, RegistrationError, new_client, secret_digest
from tokensrv.store import Client

MAX_OVERLAP = 30 * 86400  # how long a rotated-out secret may keep working


def metadata_of(client: Client) -> ClientMetadata:
    """A stored client's metadata, as new_client reads it: what `tokensrv client update` changes
    and checks again, through the one check every client's metadata passes."""
    return ClientMetadata(
        redirect_uris=client.redirect_uris, grant_types=client.grant_types,
        token_endpoint_auth_method=client.token_endpoint_auth_method, jwks=client.jwks, jwks_uri=client.jwks_uri,
        scope=client.scopes, post_logout_redirect_uris=client.post_logout_redirect_uris,
        require_pushed_authorization_requests=client.require_pushed_authorization_requests,
        dpop_bound_access_tokens=client.dpop_bound_access_tokens,
        backchannel_logout_uri=client.backchannel_logout_uri,
        backchannel_logout_session_required=client.backchannel_logout_session_required,
        client_name=client.client_name, logo_uri=client.logo_uri, policy_uri=client.policy_uri,
        tos_uri=client.tos_uri, allowed_origins=client.allowed_origins, require_mfa=client.require_mfa,
        public=client.is_public, audience=client.audience, first_party=client.first_party,
        exchange_audiences=client.exchange_audiences, admin=client.admin)


def changed_client(current: Client, metadata: ClientMetadata) -> Client:
    """`current` with `metadata`, checked as a new client's is; its id, issue time, secrets and
    registration access token kept. A change that would issue or drop a secret is refused: the
    secret never changes on an update (`rotate-secret` changes it)."""
    checked, secret = new_client(current.client_id, metadata, now=current.created_at)
    if (secret is None) != (current.secret_digest is None):
        raise MetadataError("token_endpoint_auth_method", "a client keeps its kind of credentials on update "
                            "({token_endpoint_auth_method} {method}): remove it and add it again", method=repr(
                                checked.token_endpoint_auth_method))
    return dataclasses.replace(
        checked, secret_digest=current.secret_digest, previous_secret_digest=current.previous_secret_digest,
        previous_secret_expires_at=current.previous_secret_expires_at,
        registration_token_digest=current.registration_token_digest)


def rotated_secret(current: Client, secret: str, now: int, overlap: int) -> Client:
    """`current` with the new `secret`; the one it had stays accepted for `overlap` seconds (0:
    not at all). A secret from before that is dropped: two previous secrets are never kept."""
    if current.secret_digest is None:
        raise RegistrationError(f"client {current.client_id!r} has no secret "
                                f"(it authenticates with {current.token_endpoint_auth_method})")
    previous = current.secret_digest if overlap > 0 else None
    return dataclasses.replace(current, secret_digest=secret_digest(secret), previous_secret_digest=previous,
                               previous_secret_expires_at=now + overlap if previous else 0)
