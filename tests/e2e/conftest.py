"""The end-to-end fixtures: real `tokensrv serve` processes (tests/helpers/live.py) and a real browser."""
from tests.helpers.browser import browser
from tests.helpers.live import live_server, start_server

__all__ = ["browser", "live_server", "start_server"]
