"""Project files cite only files in the repository: docs/protocol.md is the
device contract, docs/alerts.md the rules' (no document outside the checkout)."""

from __future__ import annotations

import re
import subprocess

from ctt.config import REPO_ROOT

TEXT = {".py", ".md", ".sql", ".sh", ".in", ".js", ".html", ".toml", ".yml", ".yaml", ".json"}
# A path ending in .md that is not part of a URL or a longer name.
CITED = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def test_every_cited_document_is_in_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    missing = []
    for name in tracked.stdout.split():
        path = REPO_ROOT / name
        if path.suffix not in TEXT or "node_modules" in path.parts or not path.is_file():
            continue
        for cited in CITED.findall(path.read_text(errors="replace")):
            if not ((REPO_ROOT / cited).exists() or (path.parent / cited).exists()):
                missing.append((name, cited))
    assert not missing


def test_the_protocol_document_is_the_contract() -> None:
    opening = (REPO_ROOT / "docs/protocol.md").read_text().split("\n\n")[1]
    assert "contract" in opening and "normative" in opening
