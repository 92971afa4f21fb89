"""The officer app on a slow 3G network (issue 15), in real headless Chromium: after a first
visit, the time until the alert list is shown from the phone's copy (IndexedDB, shell from the
service worker) on a throttled network, and fully offline; the peer in the same run is the v1
behaviour on the same network: a fresh profile (no service worker, no IndexedDB) loading the
page with ``?nocache=1`` (the list from the network only).

Throttling is Chromium's own (CDP ``Network.emulateNetworkConditions``): 400 ms latency,
400 kbit/s down and up. Times are from the navigation's start (``performance.now()``) to the
frame where every alert is listed; the median of a few loads. Last line:
``cached_list_ms=<...> offline_list_ms=<...>``.

    .venv/bin/python -m bench.officer [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Mapping
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from ctt.config import DB_OWNER, OpsSettings
from ctt.migrate import fresh_database
from tests.dashboards.conftest import CHROMIUM, FLAGS
from tests.dashboards.world import add_alert, add_region, shipments_on
from tests.support import ApiServer
from tracking_api.auth import mint
from tracking_api.config import ApiSettings

BENCH_DB = "ctt_bench_officer"
LAT = 45.2
HERE = (LAT, 16.25)
SLOW_3G = {"offline": False, "latency": 400, "downloadThroughput": 400_000 / 8, "uploadThroughput": 400_000 / 8}
OFFLINE = {**SLOW_3G, "offline": True}


def world(url: str, alerts: int) -> str:
    """A region with ``alerts`` open alerts along one route; its code."""
    region = "BENCH-OFFICER"
    add_region(url, region, 15.9, LAT - 0.3, 17.1, LAT + 0.3)
    for i, s in enumerate(shipments_on(url, "bench", LAT, 16.0, 17.0, alerts)):
        add_alert(url, s, "unscheduled_stop", 16.0 + i / alerts, LAT)
    return region


def shown_ms(page: Page, url: str, alerts: int, conditions: Mapping[str, float], reload: bool) -> float:
    """Milliseconds from the navigation's start until every alert is listed, on ``conditions``."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", dict(conditions))
    if reload:
        page.reload(wait_until="commit")
    else:
        page.goto(url, wait_until="commit")
    page.wait_for_function(f"document.querySelectorAll('#alerts li').length >= {alerts}", polling="raf",
                           timeout=120_000)
    elapsed: float = page.evaluate("performance.now()")
    cdp.send("Network.emulateNetworkConditions", {**SLOW_3G, "latency": 0, "downloadThroughput": -1,
                                                  "uploadThroughput": -1})
    cdp.detach()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer alerts and loads")
    quick = parser.parse_args().quick
    alerts, loads = (20, 2) if quick else (100, 5)
    ops = OpsSettings()
    url = fresh_database(ops.admin_url(), BENCH_DB, ops.url_for(DB_OWNER))
    region = world(url, alerts)
    api = ApiServer(url, Path(tempfile.gettempdir()) / "ctt-bench-officer.log").start()
    base = api.url.removesuffix("/api/v1")
    token = mint(ApiSettings(), "officer.bench", "officer", region)
    options = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
               "geolocation": {"latitude": HERE[0], "longitude": HERE[1]}, "permissions": ["geolocation"]}
    results: dict[str, list[float]] = {"cached": [], "offline": [], "v1": []}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            phone = browser.new_context(**options)  # type: ignore[arg-type]
            page = phone.new_page()
            page.goto(f"{base}/officer/#token={token}")  # the first visit: shell cached, list stored
            page.wait_for_selector("body[data-fresh=true]", timeout=60_000)
            page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
            for _ in range(loads):
                results["cached"].append(shown_ms(page, "", alerts, SLOW_3G, reload=True))
                results["offline"].append(shown_ms(page, "", alerts, OFFLINE, reload=True))
            phone.close()
            for _ in range(loads):
                fresh = browser.new_context(**options)  # type: ignore[arg-type]
                results["v1"].append(shown_ms(fresh.new_page(), f"{base}/officer/?nocache=1#token={token}", alerts,
                                              SLOW_3G, reload=False))
                fresh.close()
            browser.close()
    finally:
        api.stop()
    median = {k: statistics.median(v) for k, v in results.items()}
    for kind, label in (("cached", "after a first visit, slow 3G"), ("offline", "after a first visit, offline"),
                        ("v1", "v1 (network only), slow 3G")):
        print(f"{label:>32}: {alerts} alerts listed in {median[kind]:,.0f} ms (median of {loads}; "
              f"{', '.join(f'{v:.0f}' for v in results[kind])})", flush=True)
    print(f"ratio v1/cached = {median['v1'] / median['cached']:.1f}")
    print(f"cached_list_ms={median['cached']:.0f} offline_list_ms={median['offline']:.0f}")


if __name__ == "__main__":
    main()
