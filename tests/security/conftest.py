"""The live-server fixtures of the end-to-end suite, for the attacks that need real processes."""
from tests.e2e.conftest import live_server, start_server

__all__ = ["live_server", "start_server"]
