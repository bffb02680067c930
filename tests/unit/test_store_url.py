"""Store URLs (tokensrv/verify/store_url.py): every spelling operators use, and precise errors."""
from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis, RedisCluster

from tokensrv.config import ConfigError, load_settings
from tokensrv.verify import store_url
from tokensrv.verify.metrics import VerifierMetrics
from tokensrv.verify.mirror import RevocationMirror


def test_single_server_urls_are_left_to_redis_py() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://u:p@db.example:6380/2", "unix:///run/valkey.sock"):
        assert store_url.parse(url).topology == "single"


def test_cluster_url_names_the_seed_nodes_and_credentials() -> None:
    parsed = store_url.parse("rediss+cluster://ops:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert parsed.topology == "cluster"
    assert parsed.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (parsed.tls, parsed.username, parsed.password) == (True, "ops", "p@ss")


def test_sentinel_url_names_the_sentinels_the_service_and_the_db() -> None:
    parsed = store_url.parse("redis+sentinel://:data-pw@s1:26380,s2/tokens/3?sentinel_password=sent-pw")
    assert parsed.topology == "sentinel"
    assert parsed.nodes == (("s1", 26380), ("s2", 26379))
    assert (parsed.service, parsed.db, parsed.password) == ("tokens", 3, "data-pw")
    assert parsed.options == {"sentinel_password": "sent-pw"}
    assert not parsed.tls


@pytest.mark.parametrize(("url", "message"), [
    ("valkey://h:6379", "must start with one of redis://"),
    ("redis+shard://h:1", "must start with one of"),
    ("redis+cluster://h:99999", "bad port '99999'"),
    ("redis+cluster://h:x1", "bad port 'x1'"),
    ("redis+cluster://:1", "without a host"),
    ("redis+cluster://a:1,,b:2", "without a host"),
    ("redis+cluster://h:1/3", "database 0 only"),
    ("redis+cluster://h:1?sentinel_password=x", "unknown option 'sentinel_password'"),
    ("redis+sentinel://h:26379", "needs the service name"),
    ("redis+sentinel://h:26379/svc/x", "bad database number 'x'"),
    ("redis+sentinel://h:26379/svc?ssl_ca_certs=/ca.pem", "unknown option 'ssl_ca_certs'"),
    ("rediss+sentinel://h/svc?ssl_cert_reqs=maybe", "ssl_cert_reqs must be"),
    ("redis://h:port", "Port could not be cast"),
])
def test_bad_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store_url.parse(url)


def test_a_bad_setting_is_one_line_naming_it_without_the_passwords() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"TOKENSRV_REDIS_URL": "redis+sentinel://:hunter2@s1?sentinel_password=s3cret"})
    message = str(caught.value)
    assert message.startswith("TOKENSRV_REDIS_URL: a Sentinel URL needs the service name")
    assert "hunter2" not in message and "s3cret" not in message and "\n" not in message


def test_settings_accept_every_spelling() -> None:
    for url in ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", "rediss+cluster://u:p@h:7000",
                "redis+sentinel://127.0.0.1:26379/mymaster", "rediss+sentinel://:p@h1,h2/m/1"):
        assert load_settings({"TOKENSRV_REDIS_URL": url}).redis_url == url


def test_durable_replicas_is_checked() -> None:
    assert load_settings({"TOKENSRV_DURABLE_REPLICAS": "2"}).durable_replicas == 2
    for bad in ("-1", "two", "17"):
        with pytest.raises(ConfigError, match="TOKENSRV_DURABLE_REPLICAS"):
            load_settings({"TOKENSRV_DURABLE_REPLICAS": bad})


def test_redact_hides_every_password() -> None:
    assert store_url.redact("redis+cluster://ops:pw@h1:1,h2:2") == "redis+cluster://ops:***@h1:1,h2:2"
    assert (store_url.redact("redis+sentinel://:a@h/m?sentinel_password=b&sentinel_username=s")
            == "redis+sentinel://:***@h/m?sentinel_password=***&sentinel_username=s")
    assert store_url.redact("redis://h:1/0?password=x") == "redis://h:1/0?password=***"


async def test_connect_builds_redis_pys_clients() -> None:
    single = store_url.connect("redis://127.0.0.1:1/0")
    cluster = store_url.connect("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    sentinel = store_url.connect("redis+sentinel://127.0.0.1:1/mymaster/2", socket_timeout=1.5)
    assert isinstance(single, Redis) and isinstance(cluster, RedisCluster) and isinstance(sentinel, Redis)
    pool: object = sentinel.connection_pool
    assert pool.service_name == "mymaster"
    assert sentinel.connection_pool.connection_kwargs["db"] == 2
    for client in (single, cluster, sentinel):
        await client.aclose()


def test_the_verifier_refuses_a_bad_url_at_once() -> None:
    with pytest.raises(ValueError, match="redis_url: a Sentinel URL needs the service name"):
        RevocationMirror("redis+sentinel://:pw@h", VerifierMetrics(CollectorRegistry(), "api"), lambda: 0.0)


_hosts = st.from_regex(r"[a-z][a-z0-9-]{0,15}(\.[a-z0-9-]{1,10}){0,2}", fullmatch=True)
_ports = st.integers(1, 65535)


@given(st.lists(st.tuples(_hosts, _ports), min_size=1, max_size=5), st.booleans(),
       st.text(min_size=1, max_size=20), st.sampled_from(["cluster", "sentinel"]))
def test_any_node_list_reads_back(nodes: list[tuple[str, int]], tls: bool, password: str, kind: str) -> None:
    from urllib.parse import quote

    scheme = ("rediss" if tls else "redis") + "+" + kind
    path = "/svc" if kind == "sentinel" else ""
    url = f"{scheme}://user:{quote(password, safe='')}@{','.join(f'{h}:{p}' for h, p in nodes)}{path}"
    parsed = store_url.parse(url)
    assert parsed.nodes == tuple(nodes) and parsed.password == password and parsed.tls == tls
    assert store_url.redact(url).startswith(f"{scheme}://user:***@{nodes[0][0]}:")


@given(st.text(max_size=60))
def test_parse_never_fails_other_than_with_value_error(url: str) -> None:
    with contextlib.suppress(ValueError):
        store_url.parse(url)
