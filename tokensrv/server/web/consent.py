"""/consent: the page where a user allows an application (or not) what it asks for. Thin: the
protocol is oauth/browser/consent.py."""
from __future__ import annotations

from aiohttp import web

from tokensrv.oauth.browser import consent
from tokensrv.server.request import provider, remote_address
from tokensrv.server.web import cookies
from tokensrv.server.web.login import shown_client
from tokensrv.server.web.pages import page, params_of, redirect, render
from tokensrv.server.web.same_origin import refuse_cross_site


@page
async def consent_page(request: web.Request) -> web.StreamResponse:
    asked = await consent.show(provider(request), request.query.get("request"), cookies.csrf_token(request),
                               cookies.session_secret(request))
    return render(request, "consent.html", {"asked": asked, "client": await shown_client(request, asked.client_id)})


@page
async def consent_submit(request: web.Request) -> web.StreamResponse:
    refuse_cross_site(request)  # before anything is read or stored
    location = await consent.decide(provider(request), await params_of(request), cookies.csrf_token(request),
                                    cookies.session_secret(request), remote_address(request))
    return redirect(location)


def setup(app: web.Application) -> None:
    app.router.add_get(consent.PATH, consent_page)
    app.router.add_post(consent.PATH, consent_submit)
