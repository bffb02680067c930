"""The parties of the token-exchange tests (RFC 8693): the user's app, a gateway and two services."""
from __future__ import annotations

from tests.helpers.app import provider_of
from tests.helpers.oauth import PASSWORD, basic, post
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"

class Parties:
    """web (the user's app, its tokens for `gateway`), gateway (may exchange for orders and a
    billing URL), orders (may exchange for billing), and the user alice."""

    def __init__(self, client):
        self.client = client
        self.secrets: dict[str, str] = {}

    async def add(self, client_id, grant_types, exchange_audiences=(), audience=None, first_party=False,
                  scopes=("openid", "orders:read", "orders:write")):
        created = await admin.add_client(
            provider_of(self.client), client_id, ClientMetadata(grant_types=grant_types,
            scope=scopes, audience=audience, first_party=first_party, exchange_audiences=exchange_audiences))
        self.secrets[client_id] = created["client_secret"]

    async def token(self, client_id, **params):
        return await post(self.client, "/oauth2/token", params, basic(client_id, self.secrets[client_id]))

    async def user_tokens(self, scope="openid orders:read orders:write"):
        status, body, _ = await self.token("web", grant_type="password", username="alice", password=PASSWORD,
                                           scope=scope)
        assert status == 200, body
        return body

    async def service_token(self, client_id):
        status, body, _ = await self.token(client_id, grant_type="client_credentials", scope="orders:read")
        assert status == 200, body
        return body["access_token"]

    async def exchange(self, client_id, subject, subject_type=AT, **params):
        status, body, _ = await self.token(client_id, grant_type=EXCHANGE, subject_token=subject,
                                           subject_token_type=subject_type, **params)
        return status, body
