"""The account page is one page of several sections (two-step, passkeys, sessions, devices,
password): an `id` used twice breaks the labels that point at it and the menu's links (with TOTP
on, the menu's #password and the password form's fragment landed on the two-step section's hidden
password field)."""
from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from tests.helpers.app import provider_of
from tests.helpers.sso import add_app, add_user
from tests.helpers.two_step import enrol
from tokensrv.store.passkeys import Passkey


class Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()
        self.labels: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids[found["id"] or ""] += 1
        if tag == "label" and found.get("for"):
            self.labels.append(found["for"] or "")


async def test_every_id_on_the_full_account_page_is_unique_and_every_label_points_at_one(client, clock):
    app = await add_app(client)
    user = await add_user(client)
    await enrol(client, clock, app)  # the two-step section with its turn-off form
    await provider_of(client).store.passkeys.add_passkey(user["sub"], Passkey("c1", "k", "Laptop", 1))
    await provider_of(client).store.passkeys.add_passkey(user["sub"], Passkey("c2", "k", "Phone", 1))
    parsed = Ids()
    parsed.feed(await (await client.get("/account")).text())
    assert [name for name, count in parsed.ids.items() if count > 1] == []
    assert [label for label in parsed.labels if label not in parsed.ids] == []
    assert {"two-step", "passkeys", "sessions", "devices", "password"} <= set(parsed.ids)
