"""Pure parts of the operability work: request ids, CSV rows for `user import`, JWT claim reading."""
from __future__ import annotations

import pytest

from tokensrv.cli.user_import import by_line, read_rows
from tokensrv.server.observe import request_id


@pytest.mark.parametrize("incoming", ["abc", "lb-7f3a.1", "a:b/c+d=e@f_g", "x" * 64])
def test_a_short_printable_request_id_is_kept(incoming):
    assert request_id(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "x" * 65, "a b", "a\nb", 'a"b', "é"])
def test_anything_else_gets_a_fresh_id(incoming):
    made = request_id(incoming)
    assert made != incoming and len(made) == 16 and made != request_id(incoming)


def test_rows_header_blank_lines_roles_and_problems():
    rows, problems = read_rows([
        "username,password,email,roles\n", "ann,pw-ann-123,ann@x.org,reader; writer\n", "\n",
        "ben,pw-ben-123\n", "cat\n", "ANN,pw-other-1\n", "dan,pw,e,r,g,extra\n", "eve,pw-eve-123,,\n"])
    assert [(r.line, r.username, r.email, r.roles) for r in rows] == [
        (2, "ann", "ann@x.org", ("reader", "writer")), (4, "ben", None, ()), (8, "eve", None, ())]
    assert [p.split(":")[0] for p in problems] == ["line 5", "line 6", "line 7"]
    assert "first on line 2" in problems[1]
    assert all("pw" not in p for p in problems)  # never a password in a message


def test_a_first_row_that_is_data_is_imported():
    rows, problems = read_rows(["ann,pw-ann-123\n"])
    assert [r.username for r in rows] == ["ann"] and problems == []


def test_problems_sort_by_line_number():
    assert by_line(["line 10: b", "line 9: a", "line 100: c"]) == ["line 9: a", "line 10: b", "line 100: c"]
