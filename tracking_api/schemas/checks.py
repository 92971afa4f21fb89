"""Validators shared by request bodies."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

from pydantic import AfterValidator

T = TypeVar("T", bound=Hashable)


def no_repeats(what: str) -> AfterValidator:
    """Refuses a list naming the same ``what`` twice (the second occurrence is named)."""

    def check(values: list[T]) -> list[T]:
        seen: set[T] = set()
        for value in values:
            if value in seen:
                raise ValueError(f"{what} {value} is listed twice")
            seen.add(value)
        return values

    return AfterValidator(check)


def _without_nul(value: str) -> str:
    # PostgreSQL's text cannot hold U+0000: refused here as a 422 instead of failing in the database.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


# Free text stored in the database (notes, names, entries).
NO_NUL = AfterValidator(_without_nul)
