"""axe-core (npm, pinned in dashboards/package.json) run inside a page: the WCAG 2.1 A and AA
rules' violations, for the accessibility tests of every page (docs/dashboards.md)."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page

from ctt.config import REPO_ROOT

AXE = REPO_ROOT / "dashboards" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Page, context: str | None = None) -> list[dict[str, Any]]:
    """axe's WCAG 2.1 A/AA violations on ``page`` now (optionally within the CSS selector
    ``context``), each reduced to its rule, impact, help and the first offending nodes."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result: dict[str, Any] = page.evaluate(
        "async ([context, tags]) => await axe.run(context || document,"
        " {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})",
        [context, WCAG_AA])
    return [{"rule": v["id"], "impact": v["impact"], "help": v["help"],
             "nodes": [n["target"] for n in v["nodes"][:5]]} for v in result["violations"]]
