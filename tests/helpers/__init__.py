"""Shared test helpers: the only modules the tests import besides the package and the conftest fixtures."""
