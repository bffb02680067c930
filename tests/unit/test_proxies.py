"""X-Forwarded-For is honoured only from configured trusted proxies."""
from __future__ import annotations

import ipaddress

import pytest

from tokensrv.config import ConfigError, load_settings
from tokensrv.server.request import client_address

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize("peer, header, expected", [
    ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # an untrusted peer's header is ignored
    ("10.0.0.2", None, "10.0.0.2"),
    ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
    ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # the client's own claim is skipped
    ("10.0.0.2", "10.0.0.9, 10.0.0.7", "10.0.0.9"),  # all proxies: the leftmost
    ("10.0.0.2", "not-an-ip", "10.0.0.2"),
    ("::1", "2001:db8::5", "2001:db8::5"),
    (None, None, "unknown"),
])
def test_client_address(peer, header, expected):
    assert client_address(peer, header, PROXIES) == expected


def test_trusted_proxies_setting():
    settings = load_settings({"TOKENSRV_TRUSTED_PROXIES": "10.0.0.0/8, ::1"}, redis_url="redis://x")
    assert settings.trusted_proxies == PROXIES
    with pytest.raises(ConfigError, match="TOKENSRV_TRUSTED_PROXIES"):
        load_settings({"TOKENSRV_TRUSTED_PROXIES": "10.0.0.0/33"}, redis_url="redis://x")
