"""Signing keys: the key, its schedule and its folder (signing.py); the running rotation that one
instance performs under a store lock (manager.py). "Rotation" here is key rotation only; refresh-token
rotation is tokensrv/oauth/grants/refresh_token.py over the store."""
