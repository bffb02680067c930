"""The application under an aiohttp test client."""
from __future__ import annotations

from aiohttp.test_utils import TestClient

from tokensrv.app import PROVIDER
from tokensrv.oauth import Provider


def provider_of(client: TestClient) -> Provider:
    return client.app[PROVIDER]  # type: ignore[index]
