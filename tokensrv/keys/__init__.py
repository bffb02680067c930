"""Signing keys: the key and its schedule (signing.py: next -> current -> retired, a pure decision),
the folder of key files (folder.py) and the running rotation that one instance performs under a
store lock (manager.py). "Rotation" here is key rotation only; refresh-token rotation is
tokensrv/oauth/grants/refresh_token.py over the store."""
