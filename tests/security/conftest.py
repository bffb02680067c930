"""The live-server fixtures of the end-to-end suite, for the attacks that need real processes, and the
example orders service behind tokensrv.verify."""
from tests.helpers.live import live_server, start_server
from tests.helpers.orders import app, issuer, orders

__all__ = ["app", "issuer", "live_server", "orders", "start_server"]
