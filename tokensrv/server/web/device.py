"""/device: the RFC 8628 verification page (the protocol is in oauth/endpoints/device.py)."""
from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from tokensrv.oauth.browser import two_step
from tokensrv.oauth.endpoints import device
from tokensrv.server.request import provider, remote_address
from tokensrv.server.web import cookies
from tokensrv.server.web.login import shown_client
from tokensrv.server.web.pages import page, params_of, redirect, render
from tokensrv.server.web.same_origin import refuse_cross_site


@page
async def verification(request: web.Request) -> web.StreamResponse:
    if request.method == "POST":
        refuse_cross_site(request)  # before anything is counted or decided
    browser = cookies.browser_csrf(request)
    outcome = await device.verification_page(
        provider(request), request.method, await params_of(request), cookies.session_secret(request),
        browser, cookies.csrf_token(request), remote_address(request))
    if isinstance(outcome, device.SignIn):
        page = two_step.PATH if outcome.second_step else "/login"
        response = redirect(page + "?" + urlencode({"request": outcome.request_id}))
    else:
        client = await shown_client(request, outcome.client_id) if isinstance(outcome, device.Confirm) else None
        response = render(request, "device.html", {"step": outcome, "kind": type(outcome).__name__,
                                                   "client": client})
    cookies.set_csrf(request, response, browser)
    return response


def setup(app: web.Application) -> None:
    app.router.add_get(device.VERIFICATION_PATH, verification)
    app.router.add_post(device.VERIFICATION_PATH, verification)
