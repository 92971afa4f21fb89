"""The pages' message catalogues, for the texts the API itself writes for people (Web Push
notices, the shipment report): one JSON file per language in ``dashboards/common/locales``
(``<code>.json``, flat keys, ``{name}`` placeholders, ``_name`` the language's own name).
Adding a language is adding a file; a key missing from it falls back to English."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

FALLBACK = "en"
_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


class UnknownLanguageError(ValueError):
    """A language with no catalogue; the message names it and those there are."""


def locales_dir(dashboards_dir: Path) -> Path:
    return dashboards_dir / "common" / "locales"


@cache
def _load(folder: Path, code: str) -> dict[str, str]:
    data = json.loads((folder / f"{code}.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"catalogue {folder / code}.json is not a flat object of strings")
    return data


def available(dashboards_dir: Path) -> list[tuple[str, str]]:
    """(code, the language's own name) of every catalogue present, English first."""
    folder = locales_dir(dashboards_dir)
    codes = sorted(p.stem for p in folder.glob("*.json") if _CODE.match(p.stem)) if folder.is_dir() else []
    ordered = sorted(codes, key=lambda c: (c != FALLBACK, c))
    return [(c, _load(folder, c).get("_name", c)) for c in ordered]


class Messages:
    """The messages of one language, English underneath."""

    def __init__(self, dashboards_dir: Path, code: str = FALLBACK) -> None:
        folder = locales_dir(dashboards_dir)
        codes = [c for c, _ in available(dashboards_dir)]
        if code not in codes:
            raise UnknownLanguageError(f"language {code!r} has no catalogue (there are: {', '.join(codes) or 'none'})")
        self.code = code
        self._english = _load(folder, FALLBACK)
        self._own = _load(folder, code)

    def __call__(self, key: str, **params: object) -> str:
        """The message for ``key`` with its ``{placeholders}`` filled; the key itself if no catalogue has it."""
        text = self._own.get(key, self._english.get(key))
        if text is None:
            return key
        return re.sub(r"\{(\w+)\}", lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), text)


def negotiate(accept_language: str | None, codes: list[str]) -> str:
    """The best of ``codes`` for an ``Accept-Language`` header (RFC 9110 §12.5.4: q-values, a tag
    matching its primary language, ``*``), English if none fits."""
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if (q := params.strip()).startswith("q="):
            try:
                quality = float(q[2:])
            except ValueError:
                continue  # a malformed weight: that entry is ignored, not the whole header
        if tag and quality > 0:
            ranked.append((-quality, order, tag.strip().lower()))
    for _, _, tag in sorted(ranked):
        for candidate in (tag, tag.split("-")[0]):
            if candidate in codes:
                return candidate
        if tag == "*" and codes:
            return FALLBACK if FALLBACK in codes else codes[0]
    return FALLBACK
