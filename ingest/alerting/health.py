"""Device health from a batch's records, in its transaction: batteries (low_battery),
trackers reporting without positions (gps_jamming), and e-seals heard from again
(the end of their signal_lost). Records the batch refused are not in it."""

from __future__ import annotations

from typing import Any

import psycopg

from ingest.alerting import battery, jamming, signal_lost
from ingest.batch import Batch
from protocol.alerts import AlertChange


def device_health(cur: psycopg.Cursor[Any], batch: Batch, new_fixes: set[tuple[str, int]],
                  new_seals: set[tuple[str, int]], signal_lost_s: float) -> list[AlertChange]:
    """The health alerts this batch opens and ends (``new_*``: the records it newly stored)."""
    out = signal_lost.end_seals_lost(cur, batch, signal_lost_s)
    out += battery.evaluate(cur, batch, new_fixes, new_seals)
    out += jamming.evaluate(cur, batch, signal_lost_s)
    return out
