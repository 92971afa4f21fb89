"""Bearer tokens: who is calling, in which role, for which region.

One algorithm (HS256), and ``exp``, ``iat``, ``jti``, ``iss``, ``aud`` required: a token
without them, signed otherwise or for another audience is refused; so is one whose
lifetime (``exp - iat``) exceeds ``CTT_TOKEN_MAX_TTL_S``, however it was minted.
Revocation (by ``jti``) is checked by the routes' dependency (``tracking_api.deps``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Literal, get_args

import jwt

from tracking_api.config import ApiSettings

Role = Literal["admin", "operator", "officer", "integrator", "supervisor"]
ROLES: tuple[Role, ...] = get_args(Role)
# The roles whose token names a region: they see and hear of that region only (tracking_api.access).
REGIONAL: frozenset[Role] = frozenset({"officer", "supervisor"})
ALGORITHM = "HS256"


class TokenError(ValueError):
    """A token that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class Principal:
    """The caller. ``region`` (a region code) limits what an officer sees and does;
    ``expires_at`` (Unix seconds) and ``token_id`` (``jti``) come from the token."""

    subject: str
    role: Role
    region: str | None = None
    expires_at: int | None = None
    token_id: str | None = None
    # The unit (units.code) an officer belongs to: alerts assigned to it are theirs too.
    unit: str | None = None


def mint(settings: ApiSettings, subject: str, role: str, region: str | None = None,
         ttl_s: int | None = None, unit: str | None = None) -> str:
    """A signed token for ``subject`` in ``role``, valid ``ttl_s`` seconds (default from settings)."""
    if role not in ROLES:
        raise TokenError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role in REGIONAL and not region:
        raise TokenError(f"a token of role {role!r} needs a region")
    ttl = ttl_s if ttl_s is not None else settings.token_ttl_s
    if ttl > settings.token_max_ttl_s:
        raise TokenError(f"a token lives at most {settings.token_max_ttl_s} s (CTT_TOKEN_MAX_TTL_S), not {ttl} s")
    now = int(time.time())
    claims: dict[str, object] = {"sub": subject, "role": role, "iss": settings.jwt_issuer,
                                 "aud": settings.jwt_audience, "iat": now, "jti": uuid.uuid4().hex,
                                 "exp": now + ttl}
    if region:
        claims["region"] = region
    if unit:
        claims["unit"] = unit
    return jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM)


def verify(settings: ApiSettings, token: str) -> Principal:
    """The principal of a valid token; raises TokenError naming what is wrong."""
    try:
        claims = jwt.decode(token, settings.jwt_secret, algorithms=[ALGORITHM], audience=settings.jwt_audience,
                            issuer=settings.jwt_issuer, options={"require": ["exp", "iat", "jti", "iss", "aud", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("token expired") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from exc
    lifetime = int(claims["exp"]) - int(claims["iat"])
    if lifetime > settings.token_max_ttl_s:
        raise TokenError(f"invalid token: it lives {lifetime} s, more than CTT_TOKEN_MAX_TTL_S "
                         f"({settings.token_max_ttl_s} s)")
    role = claims.get("role")
    if role not in ROLES:
        raise TokenError(f"invalid token: role {role!r} is not one of {', '.join(ROLES)}")
    region = claims.get("region")
    if role in REGIONAL and not isinstance(region, str):
        raise TokenError(f"invalid token: a token of role {role!r} has no region")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti:
        raise TokenError("invalid token: its id (jti) is not a string")
    unit = claims.get("unit")
    return Principal(str(claims["sub"]), role, region if isinstance(region, str) else None,
                     int(claims["exp"]), jti, unit if isinstance(unit, str) else None)
