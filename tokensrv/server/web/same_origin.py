"""Cross-site form posts are refused: defence in depth behind the forms' double-submit CSRF token.

A browser says where a request comes from: `Origin` on every POST (modern browsers), and
`Sec-Fetch-Site` (Fetch Metadata). Our forms are only ever posted by our own pages, so a post
whose browser names another origin is refused before anything is read or counted, whatever
token it carries. A request with neither header (an old browser, a script) passes: the CSRF token
still guards it.

`Sec-Fetch-Site: same-site` is refused too. It means "some host of the same registrable domain":
a sibling subdomain run by another team, a staging app, user content. For an identity provider
those are other principals, and a login or logout posted from one of them is as foreign as one
from elsewhere (Ory and Keycloak likewise only trust their own origin). Only `same-origin` and
`none` (the user typed the address or used a bookmark) pass.
"""
from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from tokensrv.errors import AccessDenied
from tokensrv.oauth.clients.origins import origin_of
from tokensrv.server.appkeys import SETTINGS

_OWN_FETCH_SITES = ("same-origin", "none")


def cross_site_reason(headers: Mapping[str, str], issuer: str) -> str | None:
    """Why the browser says this request comes from elsewhere; None if it does not."""
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site.strip().lower() not in _OWN_FETCH_SITES:
        return "Sec-Fetch-Site is not same-origin"
    origin = headers.get("Origin")
    # browsers serialise an origin as origin_of does (lower-case host, no default port); an
    # opaque origin (sandboxed frame, data: URL, some redirects) is "null", never ours
    if origin is not None and origin.strip() != origin_of(issuer):
        return "Origin is not the issuer's"
    return None


def refuse_cross_site(request: web.Request) -> None:
    """Raise 403 for a form post a browser says another site sent; call it before anything else."""
    reason = cross_site_reason(request.headers, request.app[SETTINGS].issuer)
    if reason is not None:
        raise AccessDenied(f"cross-site form post: {reason}",
                           description="this form can only be sent from the sign-in pages themselves")
