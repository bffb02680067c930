"""The oldest store tokensrv accepts (store/server_version.py): Valkey or Redis 7.2, for WAITAOF,
read from INFO server as real servers answer it (parsed by redis-py's own INFO parser)."""
from __future__ import annotations

import pytest
from redis._parsers.helpers import parse_info

from tokensrv.store.server_version import per_server, server_version, version_problem

# The head of INFO server as each server prints it (Valkey keeps redis_version at 7.2.4 from 8.0 on)
REDIS_6_2 = """# Server
redis_version:6.2.14
redis_git_sha1:00000000
redis_git_dirty:0
redis_build_id:9a54d2ab2a1bd2e5
redis_mode:standalone
os:Linux 6.1.0-18-amd64 x86_64
"""
REDIS_7_0 = """# Server
redis_version:7.0.15
redis_git_sha1:00000000
redis_git_dirty:0
redis_build_id:61ffd7fde9a8b5e0
redis_mode:standalone
os:Linux 6.1.0-18-amd64 x86_64
"""
REDIS_7_2 = """# Server
redis_version:7.2.5
redis_git_sha1:00000000
redis_git_dirty:0
redis_build_id:d2a08f2cd4bb5a95
redis_mode:standalone
os:Linux 6.1.0-18-amd64 x86_64
"""
REDIS_8_0 = """# Server
redis_version:8.0.2
redis_git_sha1:00000000
redis_git_dirty:1
redis_build_id:5e3f1ffd0d4e5d9a
redis_mode:cluster
os:Linux 6.8.0-45-generic x86_64
"""
VALKEY_7_2 = """# Server
redis_version:7.2.5
server_name:valkey
valkey_version:7.2.5
redis_git_sha1:00000000
redis_git_dirty:0
redis_build_id:3bc2e1b40a2e2ba2
server_mode:standalone
"""
VALKEY_9_1 = """# Server
redis_version:7.2.4
server_name:valkey
valkey_version:9.1.2
valkey_release_stage:ga
redis_git_sha1:00000000
redis_git_dirty:0
redis_build_id:8b49d4e0bb1bdf7e
server_mode:standalone
"""


def info(text: str) -> dict[str, object]:
    return parse_info(text.replace("\n", "\r\n"))


@pytest.mark.parametrize(("text", "found"), [
    (REDIS_6_2, ("Redis", (6, 2))), (REDIS_7_0, ("Redis", (7, 0))), (REDIS_7_2, ("Redis", (7, 2))),
    (REDIS_8_0, ("Redis", (8, 0))), (VALKEY_7_2, ("Valkey", (7, 2))), (VALKEY_9_1, ("Valkey", (9, 1))),
])
def test_the_version_is_valkeys_own_else_redis(text: str, found: tuple[str, tuple[int, int]]) -> None:
    assert server_version(info(text)) == found


@pytest.mark.parametrize("text", [REDIS_7_2, REDIS_8_0, VALKEY_7_2, VALKEY_9_1])
def test_7_2_and_newer_are_accepted(text: str) -> None:
    assert version_problem(info(text)) is None


def test_an_older_store_is_refused_in_one_line_naming_what_it_runs_and_what_is_needed() -> None:
    assert version_problem(info(REDIS_7_0)) == (
        "the store runs Redis 7.0; tokensrv needs Valkey or Redis 7.2 or newer (for WAITAOF)")
    problem = version_problem(info(REDIS_6_2))
    assert problem is not None and "Redis 6.2" in problem and "\n" not in problem


def test_a_server_that_names_no_version_is_let_through() -> None:
    assert version_problem(info("# Server\nserver_mode:standalone\n")) is None


def test_a_clusters_answer_is_one_info_per_node() -> None:
    nodes = {"127.0.0.1:7000": info(VALKEY_9_1), "127.0.0.1:7001": info(REDIS_7_0)}
    assert per_server(nodes) == list(nodes.values())
    assert per_server(info(VALKEY_9_1)) == [info(VALKEY_9_1)]
