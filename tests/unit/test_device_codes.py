"""User codes (RFC 8628 §6.1) and the registration rules of the device and exchange grants."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokensrv.oauth.clients.fields import ClientMetadata
from tokensrv.oauth.clients.metadata import DEVICE_CODE, TOKEN_EXCHANGE, RegistrationError, new_client
from tokensrv.oauth.endpoints.device import USER_CODE_ALPHABET, new_user_code, normalize_user_code


def test_user_codes_are_two_dashed_groups_of_consonants():
    codes = {new_user_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 9 and code[4] == "-"
        assert set(code.replace("-", "")) <= set(USER_CODE_ALPHABET)
    assert not set("AEIOUY0123456789") & set(USER_CODE_ALPHABET)


@given(st.text(alphabet=USER_CODE_ALPHABET, min_size=8, max_size=8), st.sampled_from(["", "-", " ", " - ", "\u2010"]),
       st.booleans())  # U+2010 HYPHEN
def test_what_people_type_reads_back(raw, separator, lower):
    typed = raw[:4] + separator + raw[4:]
    assert normalize_user_code(typed.lower() if lower else typed) == raw[:4] + "-" + raw[4:]


@pytest.mark.parametrize("typed", [None, "", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "x" * 40])
def test_what_cannot_be_a_user_code(typed):
    assert normalize_user_code(typed) is None


def test_grant_names_and_the_exchange_policy():
    client, _ = new_client("cli", ClientMetadata(public=True, grant_types=["device_code"]))
    assert client.grant_types == (DEVICE_CODE,)
    client, _ = new_client("gw", ClientMetadata(grant_types=["token_exchange"], exchange_audiences=["orders"]))
    assert (client.grant_types, client.exchange_audiences) == ((TOKEN_EXCHANGE,), ("orders",))
    with pytest.raises(RegistrationError, match="public client"):
        new_client("p", ClientMetadata(public=True, grant_types=[TOKEN_EXCHANGE], exchange_audiences=["orders"]))
    with pytest.raises(RegistrationError, match="at least one exchange_audiences"):
        new_client("gw", ClientMetadata(grant_types=[TOKEN_EXCHANGE]))
    with pytest.raises(RegistrationError, match="exchange_audiences needs grant_types token_exchange"):
        new_client("gw", ClientMetadata(grant_types=["client_credentials"], exchange_audiences=["orders"]))
