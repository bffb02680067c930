"""What a person reads of the admin commands: tables and `show` views with ISO 8601 UTC times (JSON
keeps epoch seconds for scripts), and a record as aligned `name: value` lines."""
from __future__ import annotations

import json

from tokensrv.cli.output import emit, print_view

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
