"""OAuth clients: their metadata and its rules (metadata.py), how a client authenticates at an
endpoint (authentication.py: secrets, RFC 7523 assertions in assertion.py) and their public keys
(keys.py: jwks or jwks_uri)."""
