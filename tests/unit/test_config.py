"""Every configuration error is one clear line naming the setting."""
from __future__ import annotations

import pytest

from tokensrv.config import ConfigError, load_settings, redact_url

URL = {"TOKENSRV_REDIS_URL": "redis://127.0.0.1:6379/0"}


def test_defaults_follow_the_design():
    s = load_settings(URL)
    assert (s.access_token_ttl, s.refresh_token_ttl, s.refresh_family_ttl) == (900, 7 * 86400, 30 * 86400)
    assert s.issuer == "http://127.0.0.1:8080" and s.port == 8080 and s.host == "127.0.0.1"


def test_environment_then_flags():
    s = load_settings({**URL, "TOKENSRV_PORT": "9000", "TOKENSRV_ACCESS_TOKEN_TTL": "60"}, port="9100")
    assert s.port == 9100 and s.access_token_ttl == 60 and s.issuer == "http://127.0.0.1:9100"


def test_issuer_trailing_slash_is_dropped():
    assert load_settings({**URL, "TOKENSRV_ISSUER": "https://id.example.com/"}).issuer == "https://id.example.com"


@pytest.mark.parametrize("env, names", [
    ({"TOKENSRV_ACCESS_TOKEN_TTL": "abc"}, "TOKENSRV_ACCESS_TOKEN_TTL"),
    ({"TOKENSRV_ACCESS_TOKEN_TTL": "-5"}, "TOKENSRV_ACCESS_TOKEN_TTL"),
    ({"TOKENSRV_REFRESH_TOKEN_TTL": "1.5"}, "TOKENSRV_REFRESH_TOKEN_TTL"),
    ({"TOKENSRV_ID_TOKEN_TTL": "0"}, "TOKENSRV_ID_TOKEN_TTL"),
    ({"TOKENSRV_SESSION_TTL": "-1"}, "TOKENSRV_SESSION_TTL"),
    ({"TOKENSRV_JWKS_MAX_AGE": "x"}, "TOKENSRV_JWKS_MAX_AGE"),
    ({"TOKENSRV_PORT": "70000"}, "TOKENSRV_PORT"),
    ({"TOKENSRV_PORT": "http"}, "TOKENSRV_PORT"),
    ({"TOKENSRV_WORKERS": "0"}, "TOKENSRV_WORKERS"),
    ({"TOKENSRV_ISSUER": "id.example.com"}, "TOKENSRV_ISSUER"),
    ({"TOKENSRV_ISSUER": "ftp://id.example.com"}, "TOKENSRV_ISSUER"),
    ({"TOKENSRV_ISSUER": "https://id.example.com/?tenant=1"}, "TOKENSRV_ISSUER"),
    ({"TOKENSRV_ISSUER": "https://id.example.com/#top"}, "TOKENSRV_ISSUER"),
    ({"TOKENSRV_ISSUER": "https://"}, "TOKENSRV_ISSUER"),
    ({"TOKENSRV_REDIS_URL": "http://localhost:6379"}, "TOKENSRV_REDIS_URL"),
    ({"TOKENSRV_LOG_FORMAT": "xml"}, "TOKENSRV_LOG_FORMAT"),
    ({"TOKENSRV_LOG_LEVEL": "verbose"}, "TOKENSRV_LOG_LEVEL"),
    ({"TOKENSRV_KEY_ALGORITHM": "HS256"}, "TOKENSRV_KEY_ALGORITHM"),
    ({"TOKENSRV_DPOP_NONCE": "yes"}, "TOKENSRV_DPOP_NONCE"),
    ({"TOKENSRV_DPOP_IAT_WINDOW": "0"}, "TOKENSRV_DPOP_IAT_WINDOW"),
    ({"TOKENSRV_KEY_ROTATION_PERIOD": "60", "TOKENSRV_JWKS_MAX_AGE": "600"}, "TOKENSRV_KEY_ROTATION_PERIOD"),
    ({"TOKENSRV_REFRESH_TOKEN_TTL": "100", "TOKENSRV_REFRESH_FAMILY_TTL": "50"}, "TOKENSRV_REFRESH_TOKEN_TTL"),
])
def test_bad_values_name_the_setting(env: dict[str, str], names: str):
    with pytest.raises(ConfigError) as caught:
        load_settings({**URL, **env})
    message = str(caught.value)
    assert names in message and "\n" not in message


def test_redis_passwords_never_appear_in_messages():
    assert redact_url("redis://user:hunter2@db:6379/0") == "redis://user:***@db:6379/0"
    with pytest.raises(ConfigError) as caught:
        load_settings({"TOKENSRV_REDIS_URL": "http://user:hunter2@db:6379/0"})
    assert "hunter2" not in str(caught.value)


def test_dpop_settings():
    settings = load_settings({**URL, "TOKENSRV_DPOP_NONCE": "ON", "TOKENSRV_DPOP_IAT_WINDOW": "30"})
    assert (settings.dpop_nonce, settings.dpop_iat_window) == ("on", 30)
    assert (load_settings(URL).dpop_nonce, load_settings(URL).dpop_iat_window) == ("off", 60)
