"""/oauth2/logout: RP-initiated logout (the protocol is in oauth/browser/logout.py)."""
from __future__ import annotations

from aiohttp import web

from tokensrv.oauth.browser import logout as rp_logout
from tokensrv.oauth.browser.signin import same_secret
from tokensrv.server.request import provider
from tokensrv.server.web import cookies
from tokensrv.server.web.pages import page, params_of, redirect, render
from tokensrv.server.web.same_origin import refuse_cross_site


@page
async def logout(request: web.Request) -> web.StreamResponse:
    params = await params_of(request)
    browser = cookies.browser_csrf(request)
    # our own confirmation form: it echoes the browser's CSRF cookie (double submit) and only our
    # page posts it. A relying party may POST here from its own site (RP-Initiated Logout §2),
    # without csrf_token: that is not refused, it gets the confirmation page or its hint checked.
    if request.method == "POST" and "csrf_token" in params:
        refuse_cross_site(request)
    confirmed = request.method == "POST" and same_secret(params.pop("csrf_token", None), cookies.csrf_token(request))
    outcome = await rp_logout.logout(provider(request), params, cookies.session_secret(request), confirmed)
    if isinstance(outcome, rp_logout.Confirm):
        response = render(request, "logout.html", {"confirm": outcome.request, "csrf_token": browser})
        cookies.set_csrf(request, response, browser)
        return response
    response = redirect(outcome.location) if outcome.location else render(request, "logout.html", {"confirm": None})
    cookies.clear_session(request, response)
    return response


def setup(app: web.Application) -> None:
    app.router.add_get("/oauth2/logout", logout)
    app.router.add_post("/oauth2/logout", logout)
