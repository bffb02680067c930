"""The `claims` authorization request parameter (OIDC Core §5.5): which claims the client asks for,
in the ID token and from UserInfo, each voluntary or essential, with the values it wants. No HTTP.

The parameter is JSON from the browser's address bar: it is parsed by the one bounded parser
(tokensrv.verify.json_limits) with a small size and depth, and every wrong shape is a precise
invalid_request. What is read is kept as a `ClaimsRequest` (names to `ClaimRequest`) for whoever
builds claims; the authorization endpoint acts on `acr` (§5.5.1.1) itself. The request travels
with the parked authorization request and the code as the JSON text it came in (re-parsed where
it is used: it was checked once, so that cannot fail).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tokensrv.errors import InvalidRequest
from tokensrv.verify.json_limits import JSONRejected, parse_object

MAX_BYTES = 4096  # far more than a request naming every claim we know with values
MAX_DEPTH = 5  # {"id_token": {"acr": {"values": [...]}}} is 3; a value may be an object itself
MAX_VALUES = 16  # entries of one claim's `values`
MEMBERS = ("id_token", "userinfo")  # §5.5: the top-level members; others are ignored (extensions)


class InvalidClaims(InvalidRequest):
    description = "the claims parameter is not a valid OpenID Connect claims request (OIDC Core §5.5)"


@dataclass(frozen=True)
class ClaimRequest:
    """One claim asked for (§5.5.1): `null` asks for it voluntarily, with nothing else said."""
    essential: bool = False
    value: Any = None  # the one value wanted, as JSON (None: not said)
    values: tuple[Any, ...] = ()  # the values wanted, in order of preference

    @property
    def wanted(self) -> tuple[Any, ...]:
        """The values asked for (`value` first), or () when any value will do."""
        return ((self.value,) if self.value is not None else ()) + self.values


def _empty() -> Mapping[str, ClaimRequest]:
    return MappingProxyType({})


@dataclass(frozen=True)
class ClaimsRequest:
    id_token: Mapping[str, ClaimRequest] = field(default_factory=_empty)
    userinfo: Mapping[str, ClaimRequest] = field(default_factory=_empty)

    @property
    def acr(self) -> ClaimRequest | None:
        """§5.5.1.1: `acr` as an ID token claim (it is about the authentication, so there only)."""
        return self.id_token.get("acr")


NONE = ClaimsRequest()


def parse_claims(raw: str | None) -> ClaimsRequest:
    """The claims request in `raw` (the parameter's text); NONE without one. InvalidClaims when
    it is malformed, too big or too deep, or shaped other than §5.5 says."""
    if raw is None:
        return NONE
    try:
        document = parse_object(raw.encode(), max_bytes=MAX_BYTES, max_depth=MAX_DEPTH)
    except JSONRejected as exc:
        raise InvalidClaims(f"claims parameter: {exc}") from None
    except UnicodeEncodeError:
        raise InvalidClaims("claims parameter is not UTF-8") from None
    members = {name: _member(name, document.get(name)) for name in MEMBERS}
    return ClaimsRequest(**members)


def _member(name: str, value: Any) -> Mapping[str, ClaimRequest]:
    if value is None:
        return _empty()
    if not isinstance(value, dict):
        raise InvalidClaims(f"claims.{name} is not an object",
                            description=f"claims parameter: {name!r} must be an object")
    return MappingProxyType({claim: _claim(name, claim, asked) for claim, asked in value.items()})


def _claim(member: str, claim: str, asked: Any) -> ClaimRequest:
    """§5.5.1: null, or an object of `essential` (boolean), `value` and `values` (an array)."""
    if asked is None:
        return ClaimRequest()
    where = f"claims.{member}.{claim}"
    if not isinstance(asked, dict):
        raise InvalidClaims(f"{where} is not null or an object",
                            description=f"claims parameter: {claim!r} in {member!r} must be null or an object")
    essential, values = asked.get("essential", False), asked.get("values", [])
    if not isinstance(essential, bool):
        raise InvalidClaims(f"{where}.essential",
                            description=f"claims parameter: 'essential' of {claim!r} must be true or false")
    if not isinstance(values, list) or len(values) > MAX_VALUES:
        raise InvalidClaims(f"{where}.values",
                            description=f"claims parameter: 'values' of {claim!r} must be an array "
                                        f"of at most {MAX_VALUES}")
    return ClaimRequest(essential, asked.get("value"), tuple(values))


def normalised(raw: str | None) -> str | None:
    """The claims parameter checked, as compact JSON to keep with the request (None: none sent)."""
    if raw is None:
        return None
    request = parse_claims(raw)
    return json.dumps({name: {claim: _as_json(asked) for claim, asked in getattr(request, name).items()}
                       for name in MEMBERS if getattr(request, name)}, separators=(",", ":"))


def _as_json(asked: ClaimRequest) -> dict[str, Any] | None:
    if asked == ClaimRequest():
        return None
    out: dict[str, Any] = {"essential": asked.essential} if asked.essential else {}
    if asked.value is not None:
        out["value"] = asked.value
    if asked.values:
        out["values"] = list(asked.values)
    return out
