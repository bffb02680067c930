"""The example orders service behind tokensrv.verify (tests/helpers/orders.py), for the middleware tests."""
from tests.helpers.orders import app, issuer, orders

__all__ = ["app", "issuer", "orders"]
