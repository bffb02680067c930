"""tokensrv.verify.dpop without a server: htu normalisation and the bounded replay cache."""
from __future__ import annotations

import pytest

from tests.helpers.dpop import DPoPKey
from tokensrv.verify import InvalidDPoPProof
from tokensrv.verify.dpop import ReplayCache, check_proof, normalise_htu


@pytest.mark.parametrize(("url", "normal"), [
    ("https://Server.Example.COM/token", "https://server.example.com/token"),
    ("HTTPS://server.example.com:443/token?x=1#y", "https://server.example.com/token"),
    ("http://server.example.com:80", "http://server.example.com/"),
    ("http://server.example.com:8080/a%7eb%2fc", "http://server.example.com:8080/a~b%2Fc"),
    ("http://[::1]:8080/t", "http://[::1]:8080/t"),
    ("ftp://server.example.com/t", None),
    ("https://user:pass@server.example.com/t", None),
    ("https://server.example.com:99999/t", None),
    ("/token", None),
])
def test_htu_normalisation(url, normal):
    assert normalise_htu(url) == normal


def test_a_proof_checks_out_and_names_its_key():
    key = DPoPKey()
    proof = key.proof("POST", "https://as.example/token", 1000)
    checked = check_proof(proof, method="POST", url="https://AS.example:443/token", now=1030)
    assert checked.jkt == key.jkt and checked.iat == 1000
    with pytest.raises(InvalidDPoPProof):
        check_proof(proof, method="POST", url="https://as.example/token", now=1061)  # window 60 s
    with pytest.raises(InvalidDPoPProof):
        check_proof(proof, method="POST", url="https://as.example/token", now=1000, algorithms=["RS256"])


def test_the_replay_cache_refuses_a_jti_seen_within_the_window_then_forgets_it():
    cache = ReplayCache(window=60, max_entries=10)
    assert cache.add("k", "a", iat=1000, now=1000)
    assert not cache.add("k", "a", iat=1000, now=1050)
    assert cache.add("other-key", "a", iat=1000, now=1050)  # jtis are per key
    assert cache.add("k", "b", iat=1100, now=1100)  # a's window is over: forgotten
    assert len(cache) == 1


def test_a_full_replay_cache_narrows_the_window_rather_than_forget_a_live_proof():
    cache = ReplayCache(window=60, max_entries=2)
    assert cache.add("k", "a", iat=1000, now=1000)
    assert cache.add("k", "b", iat=1001, now=1001)
    assert cache.add("k", "c", iat=1002, now=1002)  # full: a (the oldest iat) goes, the floor is 1000
    assert len(cache) == 2
    assert not cache.add("k", "a", iat=1000, now=1003)  # a's replay: refused by the floor
    assert not cache.add("k", "d", iat=1000, now=1003)  # as is anything as old
