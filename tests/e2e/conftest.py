"""The end-to-end fixtures: real `tokensrv serve` processes (tests/helpers/live.py), a real browser, and
a relying party for the browser tests to sign in to (tests/helpers/party.py)."""
from tests.helpers.browser import browser
from tests.helpers.live import live_server, start_server
from tests.helpers.party import party_for

__all__ = ["browser", "live_server", "party_for", "start_server"]
