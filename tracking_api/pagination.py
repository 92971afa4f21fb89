"""Keyset pagination, the one cursor style of every list: newest first by id, a
page at a time. ``next_cursor`` is opaque to clients (base64url of the last id
served); the next page holds the ids below it, so rows added while a client
pages appear on a fresh first page, never as duplicates. A cursor this API did
not make is a 422 naming the ``cursor`` parameter."""

from __future__ import annotations

import base64
import binascii
import json
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


# Lists sorted by something else than the id: the cursor carries the sort key of the last row
# served and its id (a tie-breaker), as JSON; the next page holds the rows after that pair.
KeyValue = str | int | float | None
_KEYED = re.compile(r"key:(\[.{1,400}\])")


def encode_key(key: Sequence[KeyValue]) -> str:
    return base64.urlsafe_b64encode(f"key:{json.dumps(list(key))}".encode()).decode().rstrip("=")


def decode_key(cursor: str, arity: int) -> list[KeyValue]:
    """The sort key a cursor names (``arity`` values); 422 on ``cursor`` for anything
    ``encode_key`` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        match = _KEYED.fullmatch(raw)
        key = json.loads(match[1]) if match else None
    except (binascii.Error, ValueError):
        key = None
    if (not isinstance(key, list) or len(key) != arity
            or not all(v is None or isinstance(v, str | int | float) for v in key)):
        raise invalid((("query", "cursor"), f"cursor {cursor!r} is not a cursor from this API"))
    return key


@dataclass(frozen=True)
class KeyPageRequest:
    """``limit`` rows after the sort key ``after`` (None: from the first)."""

    limit: int
    cursor: str | None

    @property
    def fetch(self) -> int:
        return self.limit + 1

    def after(self, arity: int) -> list[KeyValue] | None:
        return None if self.cursor is None else decode_key(self.cursor, arity)

    def next_cursor(self, keys: Sequence[Sequence[KeyValue]], fetched: int) -> str | None:
        """The cursor after a page whose rows have sort ``keys``; None on the last page."""
        return encode_key(keys[-1]) if fetched > self.limit and keys else None


def key_page_request(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=600, description="`next_cursor` of the previous page")] = None,
) -> KeyPageRequest:
    return KeyPageRequest(limit, cursor)


KeyPaging = Annotated[KeyPageRequest, Depends(key_page_request)]
