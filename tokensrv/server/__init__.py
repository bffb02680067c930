"""The HTTP server: the app and its wiring (app.py, appkeys.py), the route table and thin handlers
(routes.py), reading a request (request.py), middleware (limits.py, observe.py, tracing.py), the
connection protocol (protocol.py), calls out to other servers (outbound/) and the HTML pages (web/)."""
