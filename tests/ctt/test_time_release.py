"""The demo's Time Release tables (ctt/time_release.py): rendered from the API's shape, and a
clear line instead when the API does not answer."""

from __future__ import annotations

import io

from rich.console import Console

from ctt import time_release
from tests.support import free_port

FIGURES = {
    "posts": [{"office_code": "KEMAL", "country": "KEN", "visits": 12, "dwell_median_s": 2700.0,
               "dwell_p90_s": 6300.0, "inside_median_s": 3000.0, "inside_p90_s": 6900.0}],
    "segments": [{"from": "KEMBA", "to": "KEMAL", "trips": 9, "median_s": 61200.0, "p90_s": 68400.0}],
    "countries": [{"country": "UGA", "trips": 7, "median_s": 36000.0, "p90_s": None}],
}


def _printed(*renderables: object) -> str:
    out = io.StringIO()
    console = Console(file=out, width=160)
    for r in renderables:
        console.print(r)
    return out.getvalue()


def test_tables_give_minutes_per_post_segment_and_country() -> None:
    text = _printed(*time_release.tables(FIGURES))
    assert "KEMAL" in text and "45 / 105" in text and "50 / 115" in text  # dwell, arrival -> departure
    assert "KEMBA" in text and "1020 / 1140" in text
    assert "UGA" in text and "600 / -" in text


def test_show_says_why_when_the_api_does_not_answer() -> None:
    out = io.StringIO()
    time_release.show(Console(file=out, width=200), f"http://127.0.0.1:{free_port()}/api/v1", "token")
    assert "Time Release figures unavailable" in out.getvalue() and "/kpi/time-release" in out.getvalue()
