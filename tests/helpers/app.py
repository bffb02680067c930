"""The application under an aiohttp test client."""
from __future__ import annotations

from aiohttp.test_utils import TestClient

from tokensrv.oauth import Provider
from tokensrv.server.app import PROVIDER


def provider_of(client: TestClient) -> Provider:
    return client.app[PROVIDER]  # type: ignore[index]
