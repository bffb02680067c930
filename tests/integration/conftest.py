"""The example orders service behind tokensrv.verify (tests/helpers/orders.py), for the middleware
tests, and spans collected in memory (tests/helpers/spans.py), for those that read tracing."""
from tests.helpers.orders import app, issuer, orders
from tests.helpers.spans import exporter, tracer_provider

__all__ = ["app", "exporter", "issuer", "orders", "tracer_provider"]
