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


# the metadata fields a stored client keeps under another name; every other field by its own
STORED_AS = {"scope": "scopes", "public": "is_public"}


def metadata_of(client: Client) -> ClientMetadata:
    """A stored client's metadata, as new_client reads it: what `tokensrv client update` changes
    and checks again, through the one check every client's metadata passes. Every field of
    ClientMetadata is read back (a new one included), so an update never drops one."""
    return ClientMetadata(**{f.name: getattr(client, STORED_AS.get(f.name, f.name))
                             for f in dataclasses.fields(ClientMetadata)})


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
