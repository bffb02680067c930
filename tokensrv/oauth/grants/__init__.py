"""One module per grant type (RFC 6749 §4, §6)."""
