"""The message catalogues (dashboards/common/locales): every language has every key of the
English one and no other, the same {placeholders} in each message, and every key the pages'
code asks for (``t("...")``, ``data-i18n``) exists. Adding a language is adding a file; this
test then checks it like the others."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ctt.config import REPO_ROOT
from tracking_api import i18n

DASHBOARDS = REPO_ROOT / "dashboards"
LOCALES = i18n.locales_dir(DASHBOARDS)
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A literal key in the pages' code: t("key" ... ), data-i18n="key", data-i18n-attr="attr:key;attr:key".
CALLED = re.compile(r"""\bt\(\s*["']([\w.-]+)["']""")
ATTRIBUTE = re.compile(r"""data-i18n=["']([\w.-]+)["']""")
ATTRIBUTES = re.compile(r"""data-i18n-attr=["']([^"']+)["']""")


def catalogue(code: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((LOCALES / f"{code}.json").read_text(encoding="utf-8"))
    return data


CODES = [p.stem for p in sorted(LOCALES.glob("*.json"))]


def test_english_and_french_are_there() -> None:
    assert {"en", "fr"} <= set(CODES)
    assert next(c for c, _ in i18n.available(DASHBOARDS)) == "en"


@pytest.mark.parametrize("code", [c for c in CODES if c != "en"])
def test_every_key_in_every_language_with_the_same_placeholders(code: str) -> None:
    english, other = catalogue("en"), catalogue(code)
    assert sorted(set(english) - set(other)) == [], f"{code}.json lacks these keys"
    assert sorted(set(other) - set(english)) == [], f"{code}.json has keys English does not"
    for key, text in english.items():
        assert set(PLACEHOLDER.findall(other[key])) == set(PLACEHOLDER.findall(text)), (code, key)
        assert other[key].strip(), (code, key)


def _page_sources() -> list[Path]:
    return [p for p in DASHBOARDS.rglob("*") if p.suffix in (".js", ".html") and "node_modules" not in p.parts
            and "grafana" not in p.parts and p.name != "i18n.js"]  # i18n.js documents the syntax


def test_every_key_the_pages_use_is_in_the_catalogue() -> None:
    english = catalogue("en")
    missing = []
    for path in _page_sources():
        text = path.read_text(encoding="utf-8")
        keys = CALLED.findall(text) + ATTRIBUTE.findall(text)
        for pairs in ATTRIBUTES.findall(text):
            keys += [pair.split(":", 1)[1].strip() for pair in pairs.split(";") if ":" in pair]
        missing += [(str(path.relative_to(DASHBOARDS)), k) for k in keys if k not in english]
    assert missing == []


def test_messages_fill_placeholders_and_fall_back_to_english(tmp_path: Path) -> None:
    folder = i18n.locales_dir(tmp_path)
    folder.mkdir(parents=True)
    (folder / "en.json").write_text(json.dumps({"_name": "English", "hello": "Hello {who}", "only": "English only"}))
    (folder / "sw.json").write_text(json.dumps({"_name": "Kiswahili", "hello": "Habari {who}"}))
    assert i18n.available(tmp_path) == [("en", "English"), ("sw", "Kiswahili")]  # a file is a language
    sw = i18n.Messages(tmp_path, "sw")
    assert sw("hello", who="Amina") == "Habari Amina"
    assert sw("only") == "English only"
    assert sw("absent") == "absent"
    with pytest.raises(i18n.UnknownLanguageError, match=r"'pt'.*en, sw"):
        i18n.Messages(tmp_path, "pt")
