"""/account: the signed-in user's own page (the protocol is in oauth/browser/account/), and the
QR code of a TOTP secret, drawn here as inline SVG: no image request, no third-party origin, and
nothing the CSP (server/web/pages.py) has to allow."""
from __future__ import annotations

from urllib.parse import urlencode

import segno
from aiohttp import web
from markupsafe import Markup

from tokensrv.oauth.browser import account
from tokensrv.oauth.browser.second_factor import Setup
from tokensrv.server.request import provider, remote_address
from tokensrv.server.web import cookies
from tokensrv.server.web.pages import page, params_of, redirect, render
from tokensrv.server.web.same_origin import refuse_cross_site


def qr_svg(setup: Setup | None) -> Markup | None:
    """The otpauth:// URI as a QR code; segno writes the SVG from the URI alone (no markup of ours
    inside), so it is safe to put in the page unescaped."""
    if setup is None:
        return None
    svg = segno.make(setup.uri, error="m").svg_inline(scale=5, dark="#1f2328", light="#ffffff", omitsize=False)
    return Markup(svg.replace("<svg ", '<svg role="img" aria-label="QR code of the secret" ', 1))


@page
async def account_page(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        refuse_cross_site(request)  # before anything is counted or changed
    browser = cookies.browser_csrf(request)
    outcome = await account.account_page(
        provider(request), request.method, await params_of(request), cookies.session_secret(request),
        browser, cookies.csrf_token(request), remote_address(request), request.headers.get("User-Agent", ""))
    if isinstance(outcome, account.SignIn):
        response = redirect("/login?" + urlencode({"request": outcome.request_id}))
    else:
        response = render(request, "account.html", {"account": outcome, "qr": qr_svg(outcome.setup)})
        if outcome.new_secret is not None:  # a password change: this browser's new session
            cookies.set_session(request, response, outcome.new_secret, outcome.session_ttl)
    cookies.set_csrf(request, response, browser)
    return response


def setup(app: web.Application) -> None:
    app.router.add_get(account.PATH, account_page)
    app.router.add_post(account.PATH, account_page)
