"""tokensrv: a standalone OAuth 2.0 / OpenID Connect token issuing server."""
__version__ = "0.1.0"
