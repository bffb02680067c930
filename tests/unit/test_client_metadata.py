"""One client-metadata value: `tokensrv client add`'s flags and an RFC 7591 registration body both
become a ClientMetadata, checked once by new_client; its errors name the RFC 7591 field, and each
surface spells that field its own way."""
from __future__ import annotations

import dataclasses
from dataclasses import replace
from types import SimpleNamespace

import pytest

from tokensrv.cli.client_flags import CLIENT_FLAGS, client_flag
from tokensrv.cli.commands import metadata_from_args
from tokensrv.cli.main import build_parser
from tokensrv.oauth.clients.fields import ONLY, ClientMetadata, fields_from
from tokensrv.oauth.clients.metadata import MetadataError, RedirectUriError, new_client
from tokensrv.oauth.endpoints import registration

FIELDS = [f.name for f in dataclasses.fields(ClientMetadata)]
SCOPES = ("openid", "profile", "read")


def test_every_field_has_a_flag_or_is_declared_registration_only():
    flagged = set(CLIENT_FLAGS)
    registration_only = {name for name, only in ONLY.items() if only == "registration"}
    assert set(FIELDS) == flagged | registration_only and not flagged & registration_only
    assert set(ONLY) <= set(FIELDS)
    assert set(fields_from("cli")) == flagged


def test_every_field_registration_reads_has_a_reader_for_its_type():
    for name in fields_from("registration"):
        assert registration._KINDS[name] in registration._READERS, name
    assert not {"public", "audience", "first_party", "exchange_audiences"} & set(fields_from("registration"))


def from_cli(*argv: str):
    args = build_parser().parse_args(["client", "add", "--id", "c", *argv])
    return new_client("c", metadata_from_args(args), now=100)


def from_registration(body: dict):
    p = SimpleNamespace(settings=SimpleNamespace(registration_scope_list=SCOPES), now=lambda: 100)
    return new_client("c", registration.client_metadata(p, body), now=100)


def same_record(cli, registered):
    """The stored records equal, up to the secret (random each time; present in both or neither)."""
    (a, a_secret), (b, b_secret) = cli, registered
    assert (a_secret is None) == (b_secret is None)
    assert replace(a, secret_digest=None) == replace(b, secret_digest=None)
    assert a.to_json().keys() == b.to_json().keys()


@pytest.mark.parametrize("argv, body", [
    (["--redirect-uri", "https://rp.example/cb", "--grant-type", "authorization_code", "--scope", "openid",
      "--scope", "profile"],
     {"redirect_uris": ["https://rp.example/cb"], "scope": "openid profile"}),
    (["--public", "--redirect-uri", "http://127.0.0.1:3000/cb", "--grant-type", "authorization_code",
      "--grant-type", "refresh_token", "--scope", "openid", "--dpop-bound", "--require-par",
      "--post-logout-redirect-uri", "https://rp.example/bye", "--name", "Example RP",
      "--logo-uri", "https://cdn.example/logo.png", "--policy-uri", "https://rp.example/privacy",
      "--tos-uri", "https://rp.example/tos", "--backchannel-logout-uri", "https://rp.example/bcl"],
     {"token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:3000/cb"],
      "grant_types": ["authorization_code", "refresh_token"], "scope": "openid",
      "dpop_bound_access_tokens": True, "require_pushed_authorization_requests": True,
      "post_logout_redirect_uris": ["https://rp.example/bye"], "client_name": "Example RP",
      "logo_uri": "https://cdn.example/logo.png", "policy_uri": "https://rp.example/privacy",
      "tos_uri": "https://rp.example/tos", "backchannel_logout_uri": "https://rp.example/bcl"}),
    (["--public", "--redirect-uri", "https://app.example/", "--allowed-origin", "https://App.Example:443",
      "--allowed-origin", "http://localhost:5173", "--allowed-origin", "https://app.example"],
     {"token_endpoint_auth_method": "none", "redirect_uris": ["https://app.example/"],
      "grant_types": ["authorization_code", "refresh_token"],
      "allowed_origins": ["https://app.example", "http://localhost:5173"], "scope": ""}),
    (["--auth-method", "private_key_jwt", "--jwks-uri", "https://keys.example/jwks.json",
      "--grant-type", "client_credentials", "--scope", "read"],
     {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://keys.example/jwks.json",
      "grant_types": ["client_credentials"], "response_types": [], "scope": "read"}),
])
def test_the_cli_and_registration_store_the_same_client(argv, body):
    same_record(from_cli(*argv), from_registration(body))


def test_an_error_names_the_field_and_each_surface_spells_it():
    with pytest.raises(MetadataError) as refused:
        new_client("c", ClientMetadata(grant_types=["authorization_code"]))
    assert refused.value.field == "redirect_uris"
    assert str(refused.value) == "the authorization_code grant needs at least one redirect_uris"
    assert refused.value.spelled(client_flag) == "the authorization_code grant needs at least one --redirect-uri"
    with pytest.raises(MetadataError) as refused:
        new_client("c", ClientMetadata(token_endpoint_auth_method="private_key_jwt"))
    assert refused.value.field == "jwks"
    assert refused.value.spelled(client_flag) == "private_key_jwt needs exactly one of --jwks-file and --jwks-uri"
    assert str(refused.value) == "private_key_jwt needs exactly one of jwks and jwks_uri"


def test_a_value_is_never_read_as_a_field_name():
    uri = "https://*.rp.example/{redirect_uris}"
    with pytest.raises(RedirectUriError) as refused:
        new_client("c", ClientMetadata(post_logout_redirect_uris=[uri]))
    assert refused.value.field == "post_logout_redirect_uris"
    assert repr(uri) in refused.value.spelled(client_flag)


def test_allowed_origins_are_stored_normalised_without_repeats():
    client, _ = from_cli("--public", "--redirect-uri", "https://app.example/", "--allowed-origin",
                         "HTTPS://App.Example:443", "--allowed-origin", "https://app.example",
                         "--allowed-origin", "http://[::1]:8080")
    assert client.allowed_origins == ("https://app.example", "http://[::1]:8080")
    assert list(client.to_json()["allowed_origins"]) == ["https://app.example", "http://[::1]:8080"]
    # left out when empty: an earlier release reads ordinary clients
    assert "allowed_origins" not in from_cli("--public", "--grant-type", "refresh_token")[0].to_json()


@pytest.mark.parametrize("origin, why", [
    ("https://*.app.example", "wildcard"),
    ("*", "wildcard"),
    ("null", "scheme://host[:port]"),
    ("https://app.example/", "no path"),
    ("https://app.example/spa", "no path"),
    ("https://app.example?x=1", "no path, query"),
    ("https://app.example#top", "no path, query"),
    ("http://app.example", "https (http only for loopback)"),
    ("ftp://app.example", "scheme://host[:port]"),
    ("https://user@app.example", "scheme://host[:port]"),
    ("https://app.example:99999", "malformed"),
    ("app.example", "scheme://host[:port]"),
    ("https://app example", "without spaces"),
    ("", "scheme://host[:port]"),
])
def test_an_allowed_origin_that_is_not_one_exact_origin_is_refused_naming_the_field(origin, why):
    with pytest.raises(MetadataError) as refused:
        new_client("c", ClientMetadata(public=True, redirect_uris=["https://a.example/"], allowed_origins=[origin]))
    assert refused.value.field == "allowed_origins" and why in str(refused.value)
    assert str(refused.value).startswith(f"allowed_origins {origin!r} ")
    assert refused.value.spelled(client_flag).startswith(f"--allowed-origin {origin!r} ")
