"""Logs, metrics and audit events: what every layer reports through. No aiohttp here (the HTTP
middlewares that feed these live in tokensrv/server/)."""
