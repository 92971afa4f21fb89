"""Error bodies and their OpenAPI documentation.

Every 4xx body is ``{"detail": ...}``. A 422 always has FastAPI's list form
(``loc`` names the field, ``msg`` says what is wrong with it), also for the
checks the routes make against the database (unknown zone, office, route), so
an integrator parses one shape whichever layer refused the request.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tracking_api.auth import ROLES, Role


class Problem(BaseModel):
    detail: str = Field(description="What is wrong, naming the resource, value or state")


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description='Where: ["body", field, index...] or ["query", name]')
    msg: str = Field(description="What is wrong with the value")
    type: str = Field(description="Machine-readable kind, e.g. value_error, extra_forbidden")
    input: Any = Field(default=None, description="The refused value, when there is one")


class ValidationProblem(BaseModel):
    detail: list[ValidationIssue]


def invalid(*issues: tuple[tuple[str | int, ...], str]) -> RequestValidationError:
    """A 422 in the same shape as pydantic's for checks made after parsing: (loc, msg) per issue."""
    return RequestValidationError([{"loc": loc, "msg": msg, "type": "value_error"} for loc, msg in issues])


def error(code: int, description: str, example: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entry for an error ``code`` with an example ``detail``."""
    return {code: {"model": Problem, "description": description,
                   "content": {"application/json": {"example": {"detail": example}}}}}


UNAUTHORIZED = error(401, "Missing, expired or invalid bearer token", "missing bearer token")


def forbidden(*roles: Role) -> dict[int | str, dict[str, Any]]:
    """The 403 of a route open to ``roles`` only."""
    refused = next(r for r in ROLES if r not in roles)
    return error(403, f"The caller's role is not one of: {', '.join(roles)}",
                 f"role {refused!r} may not do this (allowed: {', '.join(roles)})")


def validation(description: str, loc: list[str | int], msg: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entry for a 422 with one example issue."""
    example = {"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}
    return {422: {"model": ValidationProblem, "description": description,
                  "content": {"application/json": {"example": example}}}}


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422, but with NaN and infinities in the echoed ``input`` written as
    strings: Python's JSON parser accepts them in a request, strict JSON output
    refuses them, and the default handler would then fail with a 500."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(exc.errors()))})


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
