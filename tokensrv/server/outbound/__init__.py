"""What the server calls out to: client JWKS (client_jwks.py) and back-channel logout tokens
(logout_delivery.py)."""
