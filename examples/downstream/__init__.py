"""The orders service of examples/orders, as a FastAPI, a Flask and a Django service: each verifies
tokensrv's tokens with tokensrv.verify's adapter for its framework (docs/guides/downstream/)."""
