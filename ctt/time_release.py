"""Time Release Study figures from the API (``GET /kpi/time-release``) as console tables:
per border post, per segment between offices, per country. The demo prints them while
its trucks run and at the end."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table

PATH = "/kpi/time-release"


def fetch(api_url: str, token: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The figures as the API computes them (``api_url`` ends in /api/v1)."""
    request = urllib.request.Request(f"{api_url}{PATH}", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        figures: dict[str, Any] = json.loads(response.read())
    return figures


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f}"


def tables(figures: dict[str, Any]) -> list[Table]:
    """One table per grouping; durations in minutes (median / p90)."""
    posts = Table("post", "country", "visits", "dwell min (med/p90)", "arrival->departure min (med/p90)",
                  title="Time Release: border posts")
    for p in figures.get("posts", []):
        posts.add_row(p["office_code"], p.get("country") or "-", str(p["visits"]),
                      f"{_minutes(p['dwell_median_s'])} / {_minutes(p['dwell_p90_s'])}",
                      f"{_minutes(p['inside_median_s'])} / {_minutes(p['inside_p90_s'])}")
    segments = Table("from", "to", "trips", "min (med/p90)", title="Time Release: segments between offices")
    for s in figures.get("segments", []):
        segments.add_row(s["from"], s["to"], str(s["trips"]), f"{_minutes(s['median_s'])} / {_minutes(s['p90_s'])}")
    countries = Table("country", "trips", "min (med/p90)", title="Time Release: time in each country")
    for c in figures.get("countries", []):
        countries.add_row(c["country"], str(c["trips"]), f"{_minutes(c['median_s'])} / {_minutes(c['p90_s'])}")
    return [posts, segments, countries]


def show(console: Console, api_url: str, token: str) -> None:
    """Print the figures now; say why not when the API cannot give them."""
    try:
        figures = fetch(api_url, token)
    except (urllib.error.URLError, TimeoutError, json.JSONDecodeError) as exc:
        console.print(f"[yellow]Time Release figures unavailable ({api_url}{PATH}): {exc}[/]")
        return
    for table in tables(figures):
        console.print(table)


def show_every(console: Console, api_url: str, token: str, every_s: float, stop: threading.Event) -> threading.Thread:
    """Print the figures every ``every_s`` wall seconds until ``stop`` is set (a daemon thread)."""

    def loop() -> None:
        while not stop.wait(every_s):
            show(console, api_url, token)

    thread = threading.Thread(target=loop, name="time-release", daemon=True)
    thread.start()
    return thread
