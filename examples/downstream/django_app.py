"""orders, a Django service in one file, protected by tokensrv.verify: no call to tokensrv per
request; a background thread keeps the keys and the revocation mirror current.

    export TOKENSRV_ISSUER=http://127.0.0.1:8080          # tokensrv's issuer (the default)
    export TOKENSRV_REDIS_URL=unix://$PWD/.tokensrv/valkey.sock  # tokensrv's store: revocations
    .venv/bin/python -m examples.downstream.django_app runserver 127.0.0.1:8093 --noreload

GET /orders (scope orders:read) lists the caller's orders; POST /orders (scope orders:write) adds
one. POST /backchannel-logout is the OIDC back-channel logout receiver.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import sys
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tokensrv.verify.django import claims_of, logout_view, require

if not settings.configured:
    settings.configure(
        ROOT_URLCONF=__name__,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(32),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        MIDDLEWARE=["tokensrv.verify.django.TokenMiddleware"],
        TOKENSRV_VERIFY={
            "issuer": os.environ.get("TOKENSRV_ISSUER", "http://127.0.0.1:8080"),
            "audience": os.environ.get("ORDERS_AUDIENCE", "orders"),
            "redis_url": os.environ.get("TOKENSRV_REDIS_URL") or None,
            "realm": "orders",
        },
    )

log = logging.getLogger("orders")
orders_of: dict[str, list[dict[str, Any]]] = {}  # sub -> orders, in memory: this is an example
ended_sessions: list[str] = []


def orders(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return create_order(request)
    return list_orders(request)


@require(scopes=["orders:read"])
def list_orders(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"orders": orders_of.get(claims_of(request)["sub"], [])})


@require(scopes=["orders:write"])
def create_order(request: HttpRequest) -> JsonResponse:
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    item = body.get("item") if isinstance(body, dict) else None
    quantity = body.get("quantity") if isinstance(body, dict) else None
    if not isinstance(item, str) or not 0 < len(item) <= 100 or type(quantity) is not int or not 0 < quantity <= 1000:
        return JsonResponse({"error": "invalid_request",
                             "error_description": 'send {"item": text, "quantity": 1-1000}'}, status=400)
    order = {"item": item, "quantity": quantity}
    orders_of.setdefault(claims_of(request)["sub"], []).append(order)
    return JsonResponse(order, status=201)


def end_session(claims: dict[str, Any]) -> None:  # tokensrv signed this user's session out
    log.info("session %s of %s ended", claims.get("sid"), claims.get("sub"))
    ended_sessions.append(claims.get("sid") or claims["sub"])


urlpatterns = [
    path("orders", csrf_exempt(orders)),  # a token, not a cookie, authenticates these requests
    path("backchannel-logout", logout_view(end_session)),
]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
