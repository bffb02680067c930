"""What a person reads of the admin commands: tables and `show` views with ISO 8601 UTC times (JSON
keeps epoch seconds for scripts), and a record as aligned `name: value` lines."""
from __future__ import annotations

import json

from tokensrv.admin.operations import client_view
from tokensrv.cli.output import emit, print_view
from tokensrv.store import Client

CREATED = 1_796_688_000  # 2026-12-08T00:00:00Z


def test_tables_show_times_as_iso_dates_and_json_keeps_epoch_seconds(capsys):
    rows = [{"kid": "k1", "created_at": CREATED, "retired_at": None, "rotate_after": CREATED + 90,
             "disabled": False}]
    emit(rows, as_json=False)
    table = capsys.readouterr().out
    assert "2026-12-08T00:00:00Z" in table and "2026-12-08T00:01:30Z" in table and str(CREATED) not in table
    emit(rows, as_json=True)
    assert json.loads(capsys.readouterr().out) == rows


def test_show_prints_a_readable_view(capsys):
    print_view({"client_id": "web", "redirect_uris": ["https://a.example/cb", "https://b.example/cb"],
                "require_mfa": True, "created_at": CREATED, "client_name": None,
                "passkeys": [{"name": "phone", "created_at": CREATED}]})
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["client id:     web",
                     "redirect uris: https://a.example/cb,https://b.example/cb",
                     "require mfa:   True",
                     "created at:    2026-12-08T00:00:00Z",
                     "client name:   -",
                     "passkeys:      name=phone,created_at=2026-12-08T00:00:00Z"]


def test_the_views_keep_epoch_seconds_and_a_person_reads_iso(capsys):
    """The documented rule: JSON keeps epoch seconds, what a person reads shows ISO. The views
    (client show, rotate-secret, user consents...) once gave some times as ISO strings in JSON."""
    client = Client("web", "digest", created_at=CREATED, previous_secret_digest="old",
                    previous_secret_expires_at=CREATED + 60)
    view = client_view(client)
    assert view["created_at"] == CREATED and view["previous_secret_expires_at"] == CREATED + 60
    answer = {"client_id": "web", "client_secret": "s", "previous_secret_expires_at": CREATED + 60}
    emit(answer, as_json=True)
    assert json.loads(capsys.readouterr().out) == answer
    emit(answer, as_json=False)
    assert json.loads(capsys.readouterr().out)["previous_secret_expires_at"] == "2026-12-08T00:01:00Z"
