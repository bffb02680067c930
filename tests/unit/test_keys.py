"""The rotation schedule (keys.next_step) walked through a whole lifecycle with a fake clock."""
from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tokensrv.config import load_settings
from tokensrv.keys.folder import KeyFolder, KeyRing
from tokensrv.keys.signing import SigningKey, Step, apply_step, generate_key, next_step

SETTINGS = dataclasses.replace(
    load_settings({}, key_rotation_period=1000, jwks_max_age=100, access_token_ttl=300, id_token_ttl=200,
                  redis_url="redis://127.0.0.1:1/0"),
    key_check_interval=0)  # keys/ re-read at once: the publish delay is exactly JWKS_MAX_AGE
T0 = 1_800_000_000


def run_schedule(keys: list[SigningKey], now: int, alg: str = "ES256") -> list[SigningKey]:
    """Apply every step the schedule wants at `now` (what KeyManager does under its lock).

    ES256 keys by default: the schedule is the same for every algorithm and EC keys are fast to make.
    """
    for _ in range(10):
        step = next_step(keys, now, SETTINGS)
        if step is None:
            return keys
        writes, removals = apply_step(keys, step, now, alg)
        by_kid = {k.kid: k for k in keys}
        by_kid.update({k.kid: k for k in writes})
        keys = [k for kid, k in by_kid.items() if kid not in removals]
    raise AssertionError("the schedule did not settle")


def states(keys: list[SigningKey]) -> dict[str, str]:
    return {k.kid: k.state for k in keys}


@pytest.fixture(scope="module")
def bootstrapped() -> list[SigningKey]:
    return run_schedule([], T0)


def test_bootstrap_creates_a_signing_key_and_a_published_next_key(bootstrapped):
    assert sorted(states(bootstrapped).values()) == ["current", "next"]


def test_full_lifecycle_next_current_retired_removed(bootstrapped):
    keys = bootstrapped
    first = next(k for k in keys if k.state == "current")
    second = next(k for k in keys if k.state == "next")
    # nothing happens before the rotation period is over
    assert next_step(keys, T0 + 999, SETTINGS) is None
    keys = run_schedule(keys, T0 + 1000)
    assert states(keys)[first.kid] == "retired"
    assert states(keys)[second.kid] == "current"
    third = next(k for k in keys if k.state == "next")
    # the retired key stays published for the longest token lifetime plus the JWKS max-age
    assert next_step(keys, T0 + 1000 + 300 + 100 - 1, SETTINGS) is None
    assert next_step(keys, T0 + 1000 + 400, SETTINGS) == Step("remove", first.kid)
    keys = run_schedule(keys, T0 + 1400)
    assert states(keys) == {second.kid: "current", third.kid: "next"}


def test_a_key_signs_only_after_being_published_for_jwks_max_age(bootstrapped):
    current = next(k for k in bootstrapped if k.state == "current")
    young_next = dataclasses.replace(generate_key("RS256", T0 + 950), state="next")
    keys = [current, young_next]
    # the period is over, but the next key was published 50 s ago: wait for caches
    assert next_step(keys, T0 + 1000, SETTINGS) is None
    assert next_step(keys, T0 + 1050, SETTINGS) == Step("promote", young_next.kid)


def test_requested_rotation_waits_for_the_next_key_to_be_cached(bootstrapped):
    current = next(k for k in bootstrapped if k.state == "current")
    nxt = next(k for k in bootstrapped if k.state == "next")
    requested = [dataclasses.replace(current, rotate_after=T0 + 10), nxt]
    assert next_step(requested, T0 + 50, SETTINGS) is None  # next published 50 s ago < 100
    assert next_step(requested, T0 + 100, SETTINGS) == Step("promote", nxt.kid)


@hsettings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=900), min_size=1, max_size=25))
def test_at_every_moment_exactly_one_key_signs_and_it_was_published_long_enough(gaps):
    keys = run_schedule([], T0)
    published_since = {k.kid: k.created_at for k in keys}
    now = T0
    for gap in gaps:
        now += gap
        before = {k.kid for k in keys}
        keys = run_schedule(keys, now)
        for key in keys:
            published_since.setdefault(key.kid, now)
        signing = [k for k in keys if k.state == "current"]
        assert len(signing) == 1
        promoted = signing[0]
        if promoted.activated_at == now and promoted.kid in before and len(before) > 1:
            assert now - published_since[promoted.kid] >= SETTINGS.jwks_max_age
        # whatever a verifier cached max-age ago still covers every key that signed since
        retired = [k for k in keys if k.state == "retired"]
        for key in retired:
            assert now < key.retired_at + SETTINGS.max_token_ttl + SETTINGS.jwks_max_age


def test_folder_writes_private_files_0600_atomically(tmp_path: Path):
    folder = KeyFolder(tmp_path)
    key = generate_key("RS256", T0)
    folder.write(key)
    path = tmp_path / f"{key.kid}.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left behind
    loaded, problems = folder.load()
    assert problems == [] and [k.kid for k in loaded] == [key.kid]


def test_kid_is_the_rfc7638_thumbprint_and_rsa_is_at_least_2048_bits():
    key = generate_key("RS256", T0)
    assert key.kid == key.key.thumbprint()
    assert key.key.private_key.key_size >= 2048  # type: ignore[union-attr]


@pytest.mark.parametrize("content, reason", [
    (b"{not json", "not valid JSON"),
    (b"{}", "missing field"),
    (b'{"kid": "x", "alg": "RS256", "state": "current", "created_at": 1, "jwk": {"kty": "oct", "k": "AAAA"}}',
     "unusable"),
])
def test_corrupt_key_files_are_reported_by_name_and_skipped(tmp_path: Path, content: bytes, reason: str):
    folder = KeyFolder(tmp_path)
    good = generate_key("RS256", T0)
    folder.write(good)
    (tmp_path / "broken.json").write_bytes(content)
    keys, problems = folder.load()
    assert [k.kid for k in keys] == [good.kid]
    assert len(problems) == 1 and "broken.json" in problems[0] and reason in problems[0]


def test_a_key_file_whose_kid_lies_is_refused(tmp_path: Path):
    key = generate_key("RS256", T0)
    data = key.to_file()
    data["kid"] = "someone-else"
    (tmp_path / "someone-else.json").write_text(json.dumps(data))
    keys, problems = KeyFolder(tmp_path).load()
    assert keys == [] and "thumbprint" in problems[0]


def test_problem_lines_never_echo_key_material(tmp_path: Path):
    key = generate_key("RS256", T0)
    data = key.to_file()
    data["state"] = "bogus"
    (tmp_path / f"{key.kid}.json").write_text(json.dumps(data))
    _, problems = KeyFolder(tmp_path).load()
    private_d = data["jwk"]["d"]
    assert problems and private_d not in problems[0]


def test_jwks_publishes_public_parts_only_with_kty_use_alg_kid():
    keys = run_schedule([], T0, alg="RS256")
    ring = KeyRing.build(keys)
    document = json.loads(ring.jwks_bytes)
    assert len(document["keys"]) == 2
    for jwk in document["keys"]:
        assert {"kty", "use", "alg", "kid"} <= set(jwk)
        assert jwk["use"] == "sig" and jwk["alg"] == "RS256"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
    assert ring.signing is not None and ring.signing.state == "current"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_other_algorithms_follow_the_same_lifecycle(alg: str):
    key = generate_key(alg, T0)
    assert key.alg == alg and key.public_jwk()["alg"] == alg
    assert SigningKey.from_file(key.to_file()).kid == key.kid
