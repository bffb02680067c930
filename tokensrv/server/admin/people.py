"""The admin API's routes for users (their sessions and consents), keys and token revocation."""
from __future__ import annotations

from aiohttp import web

from tokensrv.admin import acts, bodies
from tokensrv.admin import operations as admin
from tokensrv.server.admin.routes import answer, audited, body_of, done
from tokensrv.server.request import provider


def _username(request: web.Request) -> str:
    return request.match_info["username"]


async def list_users(request: web.Request) -> web.Response:
    return answer([admin.user_view(u) for u in await provider(request).store.users.list_users()])


async def add_user(request: web.Request) -> web.Response:
    asked = bodies.new_user(await body_of(request))
    user = await admin.add_user(provider(request), **asked)
    audited(request, "admin.user_added", sub=user["sub"])
    return answer(user, 201)


async def show_user(request: web.Request) -> web.Response:
    return answer(admin.user_view(await admin.find_user(provider(request), _username(request))))


async def update_user(request: web.Request) -> web.Response:
    fields = bodies.user_fields(await body_of(request))
    user = await acts.replace_user_fields(provider(request), _username(request), fields)
    audited(request, "admin.user_updated", sub=user["sub"], changed=sorted(fields))  # names, never values
    return answer(user)


async def set_password(request: web.Request) -> web.Response:
    password = bodies.only(await body_of(request), "password")
    if not isinstance(password, str):
        raise admin.AdminError("password must be a string")
    user = await admin.set_password(provider(request), _username(request), password)
    audited(request, "admin.user_password_set", sub=user["sub"])
    return done()


async def remove_user(request: web.Request) -> web.Response:
    sub = (await admin.find_user(provider(request), _username(request))).sub
    await admin.remove_user(provider(request), _username(request))
    audited(request, "admin.user_removed", sub=sub)
    return done()


async def list_sessions(request: web.Request) -> web.Response:
    return answer(await acts.sessions_view(provider(request), _username(request)))


async def end_sessions(request: web.Request) -> web.Response:
    sid = request.match_info.get("sid")
    ended = await acts.end_sessions(provider(request), _username(request), sid)
    audited(request, "admin.user_sessions_ended", sub=ended["sub"], count=ended["ended"])
    return done()


async def revoke_user(request: web.Request) -> web.Response:
    user = await admin.revoke_everywhere(provider(request), _username(request))
    audited(request, "admin.user_signed_out", sub=user["sub"])
    return answer(user)


async def list_consents(request: web.Request) -> web.Response:
    return answer(await admin.consents_view(provider(request), _username(request)))


async def withdraw_consent(request: web.Request) -> web.Response:
    result = await admin.withdraw_consent(provider(request), _username(request), request.match_info["client_id"])
    audited(request, "admin.consent_withdrawn", sub=result["sub"], client_id=result["client_id"])
    return done()


# ---- keys and tokens ----

async def list_keys(request: web.Request) -> web.Response:
    p = provider(request)
    await p.keys.reload(force=True)
    return answer([admin.key_view(k) for k in p.keys.ring.keys])


async def rotate_keys(request: web.Request) -> web.Response:
    await admin.rotate_keys(provider(request))
    audited(request, "admin.keys_rotated")
    return await list_keys(request)


async def revoke_key(request: web.Request) -> web.Response:
    await admin.revoke_key(provider(request), request.match_info["kid"])
    audited(request, "admin.key_revoked", kid=request.match_info["kid"])
    return await list_keys(request)


async def revoke_token(request: web.Request) -> web.Response:
    token = bodies.only(await body_of(request), "token")
    if not isinstance(token, str) or not token:
        raise admin.AdminError("token must be a non-empty string")
    result = await admin.revoke_token(provider(request), token)
    if result["revoked"]:  # never the token itself: its jti names it
        audited(request, "admin.token_revoked", jti=result.get("jti"), client_id=result.get("client_id"))
    return answer(result)


def setup_people_routes(app: web.Application) -> None:
    user = "/admin/users/{username}"
    app.router.add_get("/admin/users", list_users)
    app.router.add_post("/admin/users", add_user)
    app.router.add_get(user, show_user)
    app.router.add_patch(user, update_user)
    app.router.add_delete(user, remove_user)
    app.router.add_put(user + "/password", set_password)
    app.router.add_get(user + "/sessions", list_sessions)
    app.router.add_delete(user + "/sessions", end_sessions)
    app.router.add_delete(user + "/sessions/{sid}", end_sessions)
    app.router.add_post(user + "/revoke", revoke_user)
    app.router.add_get(user + "/consents", list_consents)
    app.router.add_delete(user + "/consents/{client_id}", withdraw_consent)
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_post("/admin/keys/rotate", rotate_keys)
    app.router.add_post("/admin/keys/{kid}/revoke", revoke_key)
    app.router.add_post("/admin/tokens/revoke", revoke_token)
