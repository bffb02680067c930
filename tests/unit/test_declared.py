"""The declared file of `tokensrv apply` read and checked (tokensrv/admin/declared*.py): every error at
its line and column, all of them; bounded input (size, depth, no aliases); the JSON Schema covers every
client-metadata field and is valid draft 2020-12."""
from __future__ import annotations

import dataclasses
import json

import jsonschema_rs
import pytest

from tokensrv.admin.declared import read_declared, schema_text
from tokensrv.admin.declared_yaml import MAX_DEPTH, MAX_FILE, FileProblems
from tokensrv.oauth.clients.fields import ClientMetadata


def errors(text: str) -> list[str]:
    with pytest.raises(FileProblems) as raised:
        read_declared(text.encode())
    return [p.render("f.yaml") for p in raised.value.problems]


def test_a_good_file_reads_into_clients_and_users():
    declared = read_declared(b"""version: 1
clients:
  - client_id: web
    redirect_uris: [https://app.example.org/cb]
    scope: openid profile
users:
  - username: alice
    email_verified: true
    attributes: {locale: en, born: 2001-02-03}
""")
    (web,), (alice,) = declared.clients, declared.users
    assert web.metadata.scope == ("openid", "profile") and web.record.grant_types[0] == "authorization_code"
    assert alice.attributes == {"locale": "en", "born": "2001-02-03", "email_verified": "true"}  # a date stays text
    assert alice.disabled is None  # not given: left as it is


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 1\nclients:\n  - client_id: web\n    public: yes please\n",
     ['f.yaml:4:13: clients[0].public: "yes please" is not of type "boolean"']),
    ("version: 1\nclients:\n  - client_id: web\n    colour: blue\n",
     ["f.yaml:4:5: clients[0].colour: unknown key 'colour'"]),
    ("version: 1\nusers:\n  - username: bob\n    password: hunter2\n",
     ["f.yaml:4:5: users[0].password: passwords are never in the file: an operator sets one with "
      "`tokensrv user passwd USERNAME`"]),
    ("version: 1\nclients:\n  - client_id: web\n    redirect_uris:\n      - https://a.example/cb\n"
     "      - http://a.example/cb\n",
     ["f.yaml:6:9: clients[0].redirect_uris[1]: redirect URI 'http://a.example/cb' must use https "
      "(http only for loopback)"]),
    ("version: 1\nclients:\n  - client_id: svc\n  - client_id: svc\n",
     ["f.yaml:4:16: clients[1].client_id: client_id 'svc' is declared twice (first at line 3)"]),
    ("version: 1\nusers:\n  - username: Bob\n  - username: bob\n",
     ["f.yaml:4:15: users[1].username: username 'bob' is declared twice (first at line 3)"]),
    ("version: 2\n", ['f.yaml:1:10: version: 1 was expected']),
    ("clients: []\n", ['f.yaml:1:1: "version" is a required property']),
    ("version: 1\nversion: 1\n", ["f.yaml:2:1: key 'version' given twice in one mapping"]),
    ("version: 1\nclaims:\n  scopes:\n    openid: {x: {attribute: y}}\n",
     ["f.yaml:4:13: claims.scopes.openid: not a scope token, or a built-in scope (openid profile email address "
      "phone groups)"]),
    ("- 1\n", ["f.yaml:1:1: the file must be a mapping with version: 1"]),
])
def test_each_error_names_its_line_column_and_value(text, expected):
    assert errors(text) == expected


def test_a_yaml_syntax_error_names_where_the_parser_stopped():
    (error,) = errors("version: 1\nclients: [\n  client_id: x\n")
    assert error.startswith("f.yaml:4:1: not valid YAML: ") and "']'" in error  # libyaml's words or PyYAML's


def test_every_error_is_reported_not_only_the_first():
    found = errors("version: 1\nclients:\n  - client_id: a\n    scope: 1\n  - client_id: b\n    public: 2\n"
                   "users:\n  - username: c\n    password: x\n")
    assert [line.split(": ")[0] for line in found] == ["f.yaml:4:12", "f.yaml:6:13", "f.yaml:9:5"]


def test_anchors_and_aliases_are_refused_so_no_alias_bomb_expands():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8))
    assert errors(bomb) == ["f.yaml:1:4: YAML anchors and aliases are not allowed: write each value out"]
    assert errors("version: 1\nusers:\n  - username: x\n    roles: *r\n")[0].startswith("f.yaml:4:12: YAML anchors")


@pytest.mark.parametrize(("text", "expected"), [
    ("version: 1\nusers:\n  - username: a\n    attributes: {k: !!binary aGVsbG8=}\n",
     "f.yaml:4:21: the YAML tag !!binary is not allowed"),
    ("version: 1\nusers:\n  - username: a\n    roles: !!set {a, b}\n", "f.yaml:4:12: the YAML tag !!set"),
    ("version: 1\nusers:\n  - username: a\n    attributes: {born: !!timestamp 2001-02-03}\n",
     "f.yaml:4:24: the YAML tag !!timestamp"),
    ("version: 1\nclaims: !!omap [{a: 1}]\n", "f.yaml:2:9: the YAML tag !!omap"),
    ("version: 1\nclients:\n  - client_id: web\n    client_name: !custom x\n", "f.yaml:4:18: the YAML tag !custom"),
    ("version: 1\nclients:\n  - client_id: .inf\n", "f.yaml:3:16: '.inf' is not a finite number"),
    ("version: 1\nusers:\n  - username: a\n    attributes: {x: .NaN}\n", "f.yaml:4:21: '.NaN' is not a finite"),
])
def test_a_value_json_has_not_is_an_error_at_its_line_not_a_crash(text, expected):
    (error,) = errors(text)
    assert error.startswith(expected), error


def test_size_and_depth_are_bounded():
    assert errors("#" * (MAX_FILE + 1)) == [f"f.yaml: larger than {MAX_FILE} bytes"]
    deep = "version: 1\nclaims: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n"
    assert errors(deep)[0].endswith(f"nested deeper than {MAX_DEPTH} levels")
    with pytest.raises(FileProblems) as raised:
        read_declared(b"version: 1\n\xff\n")
    assert raised.value.problems[0].message == "not UTF-8 text"


def test_secret_env_is_only_for_a_client_with_a_secret():
    assert errors("version: 1\nclients:\n  - client_id: spa\n    public: true\n    redirect_uris: "
                  "[https://a.example/cb]\n    secret_env: SPA\n") == [
        "f.yaml:6:17: clients[0].secret_env: only a client with a secret (client_secret_basic or "
        "client_secret_post) has one, not none"]


def test_the_schema_is_draft_2020_12_and_names_every_client_metadata_field():
    schema = json.loads(schema_text())
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(schema)
    client = set(schema["$defs"]["client"]["properties"])
    assert client == {f.name for f in dataclasses.fields(ClientMetadata)} | {"client_id", "secret_env"}
    assert "password" not in schema["$defs"]["user"]["properties"]
