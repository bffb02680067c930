"""RFC 9110 §15.5.6: a 405 names the methods the resource does serve, in `Allow`, on every route.

The routes come from the application's own router, so a route added later is covered too.
"""
from __future__ import annotations

from aiohttp import hdrs, web

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def example_path(resource: web.AbstractResource) -> str:
    """A path this resource answers: its own for a plain route, a file name under a static prefix."""
    if isinstance(resource, web.StaticResource):
        return resource.canonical + "/style.css"
    assert isinstance(resource, web.PlainResource), f"teach this test about {resource!r}"
    return resource.canonical


def served_methods(resource: web.AbstractResource) -> set[str]:
    return {route.method for route in resource}


async def test_every_405_says_which_methods_the_route_serves(client):
    resources = list(client.app.router.resources())
    assert len(resources) >= 10  # the whole surface, not an empty router
    by_path: dict[str, set[str]] = {}
    for resource in resources:  # a path's routes may sit on two resources (CORS adds OPTIONS later)
        by_path.setdefault(resource.canonical, set()).update(served_methods(resource))
    for resource in resources:
        served = by_path[resource.canonical]
        assert served and hdrs.METH_ANY not in served, resource
        path = example_path(resource)
        for method in (m for m in METHODS if m not in served):
            resp = await client.request(method, path)
            assert resp.status == 405, (method, path, resp.status)
            allow = {m.strip() for m in resp.headers.get("Allow", "").split(",") if m.strip()}
            assert allow == served, (method, path, resp.headers.get("Allow"))
            if method != "HEAD":
                assert (await resp.json())["error"] == "method_not_allowed", (method, path)
