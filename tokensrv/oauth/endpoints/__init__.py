"""The endpoints of the protocol, one module per endpoint (RFC named in each module's first line).
Plain values in, a dict out or an OAuthError raised; the HTTP side is tokensrv/server/."""
