"""The browser side of sign-in: /oauth2/authorize and the /login form. Thin: HTTP in, one oauth/
call, a page or a redirect (with its cookies) out."""
from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from tokensrv.oauth.browser import authorize as authz
from tokensrv.oauth.browser import signin, two_step
from tokensrv.server.request import provider, remote_address
from tokensrv.server.web import cookies
from tokensrv.server.web.account import qr_svg
from tokensrv.server.web.pages import log, page, pairs_of, params_of, redirect, render
from tokensrv.server.web.same_origin import refuse_cross_site


@page
async def authorize(request: web.Request) -> web.StreamResponse:
    pairs = await pairs_of(request)  # repeats included: authorize decides where each fault is told
    browser = cookies.browser_csrf(request)
    outcome = await authz.authorize(provider(request), pairs, cookies.session_secret(request), browser)
    if isinstance(outcome, authz.Login):
        page_path = two_step.PATH if outcome.second_step else "/login"
        response = redirect(page_path + "?" + urlencode({"request": outcome.request_id}))
        cookies.set_csrf(request, response, browser)
        return response
    if outcome.error is not None:
        log.info("authorize: %s (%s)", outcome.error.error, outcome.error.detail)
    return redirect(outcome.location)


async def shown_client(request: web.Request, client_id: str) -> dict[str, str | None]:
    """What the page says of the client: its name (else its id), logo and links, if it has them.
    The template escapes them; the URIs were checked at registration (https, no javascript:)."""
    client = await provider(request).store.clients.get_client(client_id)
    if client is None:
        return {"name": client_id}
    return {"name": client.client_name or client_id, "logo_uri": client.logo_uri,
            "policy_uri": client.policy_uri, "tos_uri": client.tos_uri}


async def login_form(request: web.Request, form: signin.Retry) -> web.Response:
    client_id = form.pending.request.client_id
    context = {"request_id": form.request_id, "csrf_token": form.csrf_token, "error": form.error,
               "client_id": client_id, "client": await shown_client(request, client_id) if client_id else None,
               "purpose": PURPOSES.get(form.pending.resume.partition("?")[0], "to continue"),
               "confirm_username": form.confirm_username, "passkeys": provider(request).settings.mfa != "off"}
    return render(request, "login.html", context)


# what a sign-in for one of our own pages (no client) is for, by the page it returns to
PURPOSES = {"/device": "to connect a device", "/account": "to manage your account"}


@page
async def login_page(request: web.Request) -> web.StreamResponse:
    form = await signin.show(provider(request), request.query.get("request"), cookies.csrf_token(request))
    return await login_form(request, form)


@page
async def login_submit(request: web.Request) -> web.StreamResponse:
    refuse_cross_site(request)  # before anything is counted or stored
    outcome = await signin.sign_in(provider(request), await params_of(request), cookies.csrf_token(request),
                                   cookies.session_secret(request), remote_address(request),
                                   request.headers.get("User-Agent", ""))
    if isinstance(outcome, signin.Retry):
        return await login_form(request, outcome)
    if isinstance(outcome, signin.SecondStep):
        return redirect(two_step.PATH + "?" + urlencode({"request": outcome.request_id}))
    return signed_in(request, outcome)


def signed_in(request: web.Request, outcome: signin.SignedIn) -> web.Response:
    """On to where the sign-in was for, with the new session cookie; recovery codes just made
    (enrolment during sign-in) are shown first, once, with a link on."""
    if outcome.recovery_codes:
        response = render(request, "recovery_codes_page.html",
                          {"recovery_codes": outcome.recovery_codes, "location": outcome.location})
    else:
        response = redirect(outcome.location)
    signed_in_cookie(request, response, outcome)
    return response


def signed_in_cookie(request: web.Request, response: web.StreamResponse, outcome: signin.SignedIn) -> None:
    cookies.set_session(request, response, outcome.session_secret,
                        outcome.session.expires_at - outcome.session.auth_time)


async def code_form(request: web.Request, form: two_step.CodeForm) -> web.Response:
    client_id = form.pending.request.client_id
    context = {"form": form, "qr": qr_svg(form.setup),
               "client": await shown_client(request, client_id) if client_id else None}
    return render(request, "two_step.html", context)


@page
async def two_step_page(request: web.Request) -> web.StreamResponse:
    form = await two_step.show(provider(request), request.query.get("request"), cookies.csrf_token(request),
                               cookies.session_secret(request))
    return await code_form(request, form)


@page
async def two_step_submit(request: web.Request) -> web.StreamResponse:
    refuse_cross_site(request)  # before anything is counted or stored
    outcome = await two_step.submit(provider(request), await params_of(request), cookies.csrf_token(request),
                                    cookies.session_secret(request), remote_address(request),
                                    request.headers.get("User-Agent", ""))
    if isinstance(outcome, two_step.CodeForm):
        return await code_form(request, outcome)
    return signed_in(request, outcome)


def setup(app: web.Application) -> None:
    app.router.add_get("/oauth2/authorize", authorize)
    app.router.add_post("/oauth2/authorize", authorize)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_submit)
    app.router.add_get(two_step.PATH, two_step_page)
    app.router.add_post(two_step.PATH, two_step_submit)

