"""The admin API (issue #26 item 3): /admin/ on its own listener (TOKENSRV_ADMIN_PORT), thin
handlers over tokensrv/admin/ (docs/guides/admin-api.md)."""
