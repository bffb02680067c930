"""A client changed in place on every store topology: `client update`'s WATCH/MULTI keeps both of
two concurrent updates (on Cluster too, where the record is one slot), and a rotation's previous
secret round-trips through the record."""
from __future__ import annotations

import asyncio

import pytest

from tests.helpers.app import provider_of
from tokensrv.admin import operations as admin
from tokensrv.oauth.clients.fields import ClientMetadata, MetadataChange

pytestmark = pytest.mark.topologies  # every store topology (tests/conftest.py)


async def test_concurrent_updates_and_a_rotation_keep_everything(client, topology):
    p = provider_of(client)
    await admin.add_client(p, "svc", ClientMetadata())
    await asyncio.gather(admin.update_client(p, "svc", MetadataChange(added={"scope": ("read",)})),
                         admin.update_client(p, "svc", MetadataChange(added={"scope": ("write",)})),
                         admin.rotate_secret(p, "svc", 60))
    stored = await p.store.clients.get_client("svc")
    assert stored is not None and set(stored.scopes) == {"read", "write"}
    assert stored.previous_secret_digest is not None and stored.previous_secret_expires_at == p.now() + 60
