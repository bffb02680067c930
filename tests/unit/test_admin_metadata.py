"""Which clients may be admin (the admin API's callers), and the scope no client lists."""
from __future__ import annotations

import pytest

from tokensrv.cli.client_flags import client_flag
from tokensrv.oauth.clients.changes import changed_client, metadata_of
from tokensrv.oauth.clients.fields import ClientMetadata, fields_from
from tokensrv.oauth.clients.metadata import MetadataError, new_client

JWKS_URI = "https://svc.example/jwks.json"


@pytest.mark.parametrize("metadata", [
    ClientMetadata(grant_types=("client_credentials",), admin=True),
    ClientMetadata(grant_types=("client_credentials",), token_endpoint_auth_method="client_secret_post", admin=True),
    ClientMetadata(grant_types=("client_credentials",), token_endpoint_auth_method="private_key_jwt",
                   jwks_uri=JWKS_URI, admin=True),
])
def test_a_confidential_client_credentials_client_may_be_admin(metadata):
    client, _ = new_client("ops", metadata)
    assert client.admin is True
    assert changed_client(client, metadata_of(client)).admin is True  # an update keeps the mark


@pytest.mark.parametrize("metadata", [
    ClientMetadata(public=True, redirect_uris=("https://a.example/cb",), admin=True),
    ClientMetadata(grant_types=("authorization_code",), redirect_uris=("https://a.example/cb",), admin=True),
])
def test_no_other_client_may_be_admin_and_the_cli_names_the_flag(metadata):
    with pytest.raises(MetadataError) as refused:
        new_client("web", metadata)
    assert refused.value.field == "admin"
    assert refused.value.spelled(client_flag).startswith("--admin is only for a confidential client")


def test_no_client_lists_the_admin_scope():
    with pytest.raises(MetadataError) as refused:
        new_client("svc", ClientMetadata(scope=("read", "tokensrv:admin")))
    assert refused.value.field == "scope" and "--admin" in refused.value.spelled(client_flag)


def test_registration_never_sets_admin():
    assert "admin" not in fields_from("registration") and "admin" in fields_from("cli")
