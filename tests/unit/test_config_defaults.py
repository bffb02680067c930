"""Settings checked against each other (issue 21 item 11): a default gives way to the setting the
user chose; only two settings the user chose that contradict each other are refused."""
from __future__ import annotations

import pytest

from tokensrv.config import ConfigError, Settings, load_settings

DEFAULTS = Settings()


def settings(**env: str) -> Settings:
    return load_settings({f"TOKENSRV_{name.upper()}": value for name, value in env.items()})


def test_a_short_session_alone_shortens_the_default_idle_lifetime():
    s = settings(session_ttl="4")
    assert (s.session_ttl, s.session_idle_ttl) == (4, 4)


def test_a_long_idle_session_alone_lengthens_the_default_session():
    s = settings(session_idle_ttl=str(2 * 86400))
    assert (s.session_idle_ttl, s.session_ttl) == (2 * 86400, 2 * 86400)


def test_a_short_refresh_family_alone_shortens_the_default_idle_refresh_lifetime():
    s = settings(refresh_family_ttl="3600")
    assert (s.refresh_family_ttl, s.refresh_token_ttl) == (3600, 3600)


def test_a_long_idle_refresh_lifetime_alone_lengthens_the_default_family():
    s = settings(refresh_token_ttl=str(60 * 86400))
    assert (s.refresh_token_ttl, s.refresh_family_ttl) == (60 * 86400, 60 * 86400)


def test_a_short_rotation_period_alone_shortens_the_default_jwks_max_age():
    s = settings(key_rotation_period="300")
    assert (s.key_rotation_period, s.jwks_max_age) == (300, 150)  # half the period: rotations keep time


def test_a_long_jwks_max_age_alone_lengthens_the_default_rotation_period():
    s = settings(jwks_max_age=str(7 * 86400))
    assert (s.jwks_max_age, s.key_rotation_period) == (7 * 86400, 14 * 86400)


def test_a_setting_within_the_defaults_leaves_them_alone():
    s = settings(session_ttl="43200", refresh_family_ttl=str(10 * 86400), key_rotation_period="86400")
    assert s.session_idle_ttl == DEFAULTS.session_idle_ttl
    assert s.refresh_token_ttl == DEFAULTS.refresh_token_ttl
    assert s.jwks_max_age == DEFAULTS.jwks_max_age


def test_cli_overrides_count_as_chosen_too():
    s = load_settings({}, session_ttl=4)
    assert s.session_idle_ttl == 4


@pytest.mark.parametrize("env, names", [
    ({"session_ttl": "4", "session_idle_ttl": "5"}, ("SESSION_IDLE_TTL", "SESSION_TTL")),
    ({"refresh_family_ttl": "60", "refresh_token_ttl": "61"}, ("REFRESH_TOKEN_TTL", "REFRESH_FAMILY_TTL")),
    ({"key_rotation_period": "600", "jwks_max_age": "600"}, ("KEY_ROTATION_PERIOD", "JWKS_MAX_AGE")),
])
def test_two_chosen_settings_that_contradict_each_other_are_refused(env, names):
    with pytest.raises(ConfigError) as raised:
        settings(**env)
    assert all(f"TOKENSRV_{name}" in str(raised.value) for name in names)


def test_a_chosen_setting_equal_to_the_default_is_still_chosen():
    with pytest.raises(ConfigError):
        settings(session_ttl="4", session_idle_ttl=str(DEFAULTS.session_idle_ttl))
