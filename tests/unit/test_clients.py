"""Client registration rules and client authentication (RFC 6749 §2.3.1), against a tiny
in-test client source: no store behaviour is under test here."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensrv.errors import InvalidClient, InvalidRequest
from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import (
    Display,
    RedirectUriError,
    RegistrationError,
    check,
    check_redirect_uri,
    new_client,
    presented,
)
from tokensrv.store import Client


class Clients:
    def __init__(self, *clients: Client) -> None:
        self.clients = {c.client_id: c for c in clients}

    async def get_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)


async def authenticate(store: Clients, form: dict[str, str], authorization: str | None, *,
                       allow_public: bool = True) -> Client:
    """The secret path of tokensrv.oauth.clients.authentication.authenticate, without the lockouts
    that need a Provider (tests/integration/test_client_auth_throttle.py has those)."""
    offered = presented(form, authorization)
    if not offered.client_id:
        raise InvalidClient("no client credentials")
    return await check(store, offered.client_id, offered.secret, allow_public=allow_public)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_confidential_client_gets_a_256_bit_secret_stored_only_as_a_digest():
    client, secret = new_client("svc", ClientMetadata(grant_types=["client_credentials"]))
    assert secret is not None and len(base64.urlsafe_b64decode(secret + "==")) == 32
    assert client.secret_digest == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(client) and secret not in str(client.to_json())
    other = new_client("svc", ClientMetadata(grant_types=["client_credentials"]))[1]
    assert other != secret


def test_public_client_has_no_secret():
    client, secret = new_client("spa", ClientMetadata(public=True, redirect_uris=["https://spa.example/cb"]))
    assert secret is None and client.is_public and client.secret_digest is None


@pytest.mark.parametrize("public,redirects,expected", [
    (False, [], ("client_credentials",)),
    (False, ["https://app.example/cb"], ("authorization_code", "refresh_token", "client_credentials")),
    (True, ["https://spa.example/cb"], ("authorization_code", "refresh_token")),
])
def test_default_grant_types(public, redirects, expected):
    assert new_client("c", ClientMetadata(public=public, redirect_uris=redirects))[0].grant_types == expected


def test_everything_registered_is_kept_without_repeats():
    client, _ = new_client("app", ClientMetadata(redirect_uris=["https://a.example/cb", "https://a.example/cb"],
                           grant_types=["password", "refresh_token", "password"], scope=["read", "read", "write"],
                           audience="orders", first_party=True, post_logout_redirect_uris=["https://a.example/"]),
                           now=123)
    assert client.redirect_uris == ("https://a.example/cb",)
    assert client.grant_types == ("password", "refresh_token") and client.scopes == ("read", "write")
    assert (client.audience, client.first_party, client.created_at) == ("orders", True, 123)
    assert client.post_logout_redirect_uris == ("https://a.example/",)


@pytest.mark.parametrize("kwargs,words", [
    ({"client_id": ""}, "client id"),
    ({"client_id": "a b"}, "client id"),
    ({"client_id": "a:b"}, "client id"),
    ({"client_id": "x" * 129}, "client id"),
    ({"grant_types": ["implicit"]}, "unknown grant type"),
    ({"public": True, "grant_types": ["client_credentials"]}, "public"),
    ({"grant_types": ["password"]}, "first_party"),
    ({"grant_types": ["authorization_code"]}, "redirect_uris"),
    ({"public": True}, "redirect_uris"),
    ({"scope": ["a b"]}, "scope"),
    ({"scope": [""]}, "scope"),
    ({"redirect_uris": ["/relative"]}, "redirect URI"),
])
def test_registration_mistakes_are_one_line(kwargs, words):
    args = {"client_id": "c", "public": False, **kwargs}
    with pytest.raises(RegistrationError) as exc:
        new_client(args.pop("client_id"), ClientMetadata(**args))
    assert words in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("uri", [
    "https://app.example/cb", "https://app.example:8443/cb?x=1", "http://127.0.0.1:3000/cb",
    "http://localhost/cb", "http://[::1]:8080/cb", "com.example.app:/oauth2redirect",
])
def test_acceptable_redirect_uris(uri):
    check_redirect_uri(uri)


@pytest.mark.parametrize("uri", [
    "", "/cb", "app.example/cb", "https://app.example/cb#x", "https://app.example/c b", "http://app.example/cb",
    "https://user:pw@app.example/cb", "https:///cb", "https://app.example:99999/cb", "javascript:alert(1)",
    "data:text/html,x", "file:///etc/passwd", "com.example.app://user:pw@app.example/cb",
    "com.example.app://evil.example@app.example",
])
def test_unacceptable_redirect_uris(uri):
    with pytest.raises(RegistrationError):
        check_redirect_uri(uri)


# ---- authentication ----

@pytest.fixture
def registered() -> tuple[Clients, str]:
    svc, secret = new_client("svc", ClientMetadata(grant_types=["client_credentials"]))
    spa, _ = new_client("spa", ClientMetadata(public=True, redirect_uris=["https://spa.example/cb"]))
    return Clients(svc, spa), secret


async def test_basic_and_post_authenticate(registered):
    clients, secret = registered
    assert (await authenticate(clients, {}, basic("svc", secret))).client_id == "svc"
    assert (await authenticate(clients, {"client_id": "svc", "client_secret": secret}, None)).client_id == "svc"
    assert (await authenticate(clients, {"client_id": "svc"}, basic("svc", secret))).client_id == "svc"
    assert (await authenticate(clients, {"client_id": "spa"}, None)).client_id == "spa"


@pytest.mark.parametrize("form,authorization", [
    ({}, None),
    ({"client_id": "svc"}, None),
    ({"client_id": "svc", "client_secret": "wrong"}, None),
    ({"client_id": "ghost", "client_secret": "x"}, None),
    ({}, "Bearer x"),
    ({}, "Basic %%%"),
    ({}, "Basic " + base64.b64encode(b"svc").decode()),
    ({"client_id": "spa", "client_secret": "x"}, None),
])
async def test_authentication_failures_are_invalid_client(registered, form, authorization):
    with pytest.raises(InvalidClient) as exc:
        await authenticate(registered[0], form, authorization)
    assert exc.value.status == 401 and exc.value.headers["WWW-Authenticate"].startswith("Basic")


async def test_a_different_client_id_in_the_form_is_invalid_client(registered):
    clients, secret = registered
    with pytest.raises(InvalidClient):
        await authenticate(clients, {"client_id": "spa"}, basic("svc", secret))


async def test_two_methods_at_once_is_invalid_request(registered):
    clients, secret = registered
    with pytest.raises(InvalidRequest):
        await authenticate(clients, {"client_secret": secret}, basic("svc", secret))


async def test_public_clients_can_be_refused(registered):
    with pytest.raises(InvalidClient):
        await authenticate(registered[0], {"client_id": "spa"}, None, allow_public=False)


async def test_unknown_client_is_not_echoed_in_full_to_the_log(registered):
    secret = registered[1]
    with pytest.raises(InvalidClient) as exc:
        await authenticate(registered[0], {}, basic(secret, "svc"))  # id and secret swapped
    assert secret not in exc.value.detail


# ---- the record's new fields: older records read the same, a later release's fields are skipped ----

def test_a_record_written_before_auth_methods_existed_reads_as_before():
    secretful = Client.from_json({"client_id": "svc", "secret_digest": "ab" * 32, "redirect_uris": [],
                                  "grant_types": ["client_credentials"], "scopes": [], "audience": None,
                                  "first_party": False, "post_logout_redirect_uris": [], "created_at": 1})
    assert secretful.token_endpoint_auth_method == "client_secret_basic" and not secretful.is_public
    assert secretful.jwks is None and not secretful.require_pushed_authorization_requests
    public = Client.from_json({"client_id": "spa", "secret_digest": None})
    assert public.token_endpoint_auth_method == "none" and public.is_public


def test_an_ordinary_record_is_written_as_an_earlier_release_reads_it():
    before = {"client_id", "secret_digest", "redirect_uris", "grant_types", "scopes", "audience",
              "first_party", "post_logout_redirect_uris", "created_at"}
    for public in (True, False):
        client, _ = new_client("c", ClientMetadata(public=public, redirect_uris=["https://app.example/cb"]))
        assert set(client.to_json()) == before
        assert Client.from_json(client.to_json()) == client


def test_a_record_round_trips_and_unknown_fields_are_skipped():
    jwks = {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}
    client, secret = new_client("signed", ClientMetadata(token_endpoint_auth_method="private_key_jwt", jwks=jwks,
                                require_pushed_authorization_requests=True))
    assert secret is None and client.secret_digest is None and not client.is_public
    assert Client.from_json(client.to_json()) == client
    assert Client.from_json({**client.to_json(), "a_later_releases_field": True}) == client


async def test_a_private_key_jwt_client_is_not_authenticated_by_naming_itself():
    client, _ = new_client("signed", ClientMetadata(token_endpoint_auth_method="private_key_jwt",
                           jwks_uri="https://keys.example/jwks.json"))
    with pytest.raises(InvalidClient):
        await authenticate(Clients(client), {"client_id": "signed"}, None)
    with pytest.raises(InvalidClient):
        await authenticate(Clients(client), {"client_id": "signed", "client_secret": "guess"}, None)


@pytest.mark.parametrize("kwargs", [
    {"token_endpoint_auth_method": "client_secret_jwt"},  # not offered
    {"token_endpoint_auth_method": "private_key_jwt"},  # no keys
    {"token_endpoint_auth_method": "client_secret_basic", "jwks_uri": "https://keys.example/jwks.json"},
    {"public": True, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://keys.example/jwks.json"},
    {"token_endpoint_auth_method": "private_key_jwt",
     "jwks": {"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB", "d": "AQAB"}]}},
    {"token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": []}},
    {"token_endpoint_auth_method": "private_key_jwt", "jwks": ["not", "a", "jwks"]},
    {"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "http://keys.example/jwks.json"},
])
def test_bad_auth_method_registrations(kwargs):
    with pytest.raises(RegistrationError):
        new_client("c", ClientMetadata(**{"public": False, "redirect_uris": ["https://app.example/cb"], **kwargs}))


# ---- what people see of a client, and redirect URIs from strangers (RFC 7591 registration) ----

def test_display_metadata_round_trips_and_stays_out_of_ordinary_records():
    display = Display("Example RP", "https://cdn.example/logo.png", "https://rp.example/privacy",
                      "http://127.0.0.1:3000/tos")
    client, _ = new_client("rp", ClientMetadata(public=True, redirect_uris=["https://rp.example/cb"], **vars(display)))
    assert (client.client_name, client.logo_uri, client.policy_uri, client.tos_uri) == (
        "Example RP", "https://cdn.example/logo.png", "https://rp.example/privacy", "http://127.0.0.1:3000/tos")
    assert Client.from_json(client.to_json()) == client
    plain, _ = new_client("plain", ClientMetadata(public=True, redirect_uris=["https://rp.example/cb"]))
    assert not {"client_name", "logo_uri", "policy_uri", "tos_uri", "registration_token_digest"} & set(plain.to_json())
    assert not plain.registered


@pytest.mark.parametrize("display, words", [
    (Display(client_name=""), "client_name"), (Display(client_name="a\u0000b"), "client_name"),
    (Display(client_name="x" * 101), "client_name"),
    (Display(logo_uri="http://127.0.0.1/logo.png"), "must be an absolute https URL"),
    (Display(logo_uri="javascript:alert(1)"), "logo_uri"), (Display(policy_uri="http://rp.example/p"), "policy_uri"),
    (Display(tos_uri="https://user@rp.example/tos"), "tos_uri"), (Display(tos_uri="/tos"), "tos_uri"),
])
def test_bad_display_metadata_is_one_line(display, words):
    with pytest.raises(RegistrationError, match=words):
        new_client("rp", ClientMetadata(public=True, redirect_uris=["https://rp.example/cb"], **vars(display)))


@pytest.mark.parametrize("uri", ["https://*.app.example/cb", "https://app.example:*/cb", "blob:https://app.example/x",
                                 "https://app.example/\u0007", "https://app.example/" + "a" * 2048])
def test_wildcards_control_characters_and_huge_uris_are_refused(uri):
    with pytest.raises(RedirectUriError):
        check_redirect_uri(uri)


_SCHEMES = st.sampled_from(["javascript", "JavaScript", "data", "vbscript", "file", "blob", "http", "https",
                            "com.example.app", ""])
_HOSTS = st.sampled_from(["app.example", "127.0.0.1", "localhost", "[::1]", "*.app.example", "", "evil.example",
                          "user:pw@app.example", "app.example:8443"])
_PATHS = st.text(alphabet="/abc?=&#%*: \t\n.", max_size=12)


@given(scheme=_SCHEMES, slashes=st.sampled_from(["//", "", "/"]), host=_HOSTS, path=_PATHS)
def test_every_accepted_redirect_uri_is_safe_to_send_a_code_to(scheme, slashes, host, path):
    """Whatever the shape, an accepted URI is absolute, has no fragment, wildcard, whitespace or
    user info, is http only for loopback, and is no script or document scheme."""
    uri = f"{scheme}:{slashes}{host}{path}" if scheme else f"{slashes}{host}{path}"
    try:
        check_redirect_uri(uri)
    except RedirectUriError:
        return
    parts = urlsplit(uri)
    assert parts.scheme and "#" not in uri and "*" not in parts.netloc
    assert not any(c.isspace() for c in uri) and "@" not in parts.netloc
    assert parts.scheme not in ("javascript", "data", "vbscript", "file", "blob")
    if parts.scheme == "http":
        assert parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme in ("http", "https"):
        assert parts.hostname


def test_an_update_keeps_every_metadata_field_it_does_not_change():
    """metadata_of reads every ClientMetadata field back from the stored client: an update that
    changes one field keeps the others (consent_required was once dropped, and the client stopped
    asking consent), a field added later included."""
    from tokensrv.oauth.clients.changes import changed_client, metadata_of
    metadata = ClientMetadata(
        redirect_uris=("https://app.example/cb",),
        grant_types=("authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"),
        token_endpoint_auth_method="client_secret_basic", scope=("openid", "profile"),
        post_logout_redirect_uris=("https://app.example/bye",), require_pushed_authorization_requests=True,
        dpop_bound_access_tokens=True, backchannel_logout_uri="https://app.example/bc",
        backchannel_logout_session_required=False, client_name="App", logo_uri="https://app.example/logo.png",
        policy_uri="https://app.example/privacy", tos_uri="https://app.example/tos",
        allowed_origins=("https://app.example",), require_mfa=True, audience="https://api.example",
        consent_required=True, exchange_audiences=("https://other.example",))
    client, _ = new_client("app", metadata, now=1)
    back = metadata_of(changed_client(client, dataclasses.replace(metadata_of(client), client_name="Renamed")))
    for field in dataclasses.fields(ClientMetadata):
        expected = "Renamed" if field.name == "client_name" else getattr(metadata, field.name)
        assert getattr(back, field.name) == expected, field.name
    assert back.consent_required and changed_client(client, metadata_of(client)).consent_required
    with pytest.raises(RegistrationError, match="first_party"):  # and --first-party conflicts with it
        changed_client(client, dataclasses.replace(metadata_of(client), first_party=True))
