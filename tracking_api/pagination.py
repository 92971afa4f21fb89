"""Keyset pagination, the one cursor style of every list: newest first by id, a
page at a time. ``next_cursor`` is opaque to clients (base64url of the last id
served); the next page holds the ids below it, so rows added while a client
pages appear on a fresh first page, never as duplicates. A cursor this API did
not make is a 422 naming the ``cursor`` parameter."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

from tracking_api.schemas.errors import invalid

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_BIGINT_MAX = 2**63 - 1
_KEY = re.compile(r"id:(\d{1,19})")


def encode(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    """The id a cursor names; 422 on ``cursor`` for anything ``encode`` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, ValueError):
        raw = ""
    match = _KEY.fullmatch(raw)
    if match is None or int(match[1]) > _BIGINT_MAX:
        raise invalid((("query", "cursor"), f"cursor {cursor!r} is not a cursor from this API"))
    return int(match[1])


@dataclass(frozen=True)
class PageRequest:
    """``limit`` rows with ids below ``below`` (None: from the newest)."""

    limit: int
    below: int | None

    @property
    def fetch(self) -> int:
        """Rows to ask the database for: one more than a page tells whether another exists."""
        return self.limit + 1

    def next_cursor(self, ids: Sequence[int], fetched: int) -> str | None:
        """The cursor after a page of ``ids`` (newest first) out of ``fetched`` rows; None on the last page."""
        return encode(ids[-1]) if fetched > self.limit and ids else None


def page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64, description="`next_cursor` of the previous page")] = None,
) -> PageRequest:
    return PageRequest(limit, None if cursor is None else decode(cursor))


Paging = Annotated[PageRequest, Depends(page_request)]
