"""The live stream's source: one database listener per API process, fanned out
to every connected client, each filtered by what its caller may see.

Ingest sends ``ctt_positions`` after each batch that moved trucks, the alerts
table's trigger records every alert change in ``alert_events`` and sends
``ctt_alert_events``; shipment changes send ``ctt_geofence``. On each
notification the hub runs one query (not one per client) and hands the events
to the clients' queues. Alert events are read by ``seq``, given at commit
(schema/006_alert_core.sql): a change committed late is never passed over. A
client too slow to keep up is dropped; it reconnects with ``Last-Event-ID`` (a
seq) and gets every alert change it missed, read a page at a time, or a
``resync`` event when some of them are no longer kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import psycopg
import structlog
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from protocol.alerts import alert_change, to_dict
from tracking_api import access, revocations
from tracking_api.auth import Principal
from tracking_api.metrics import STREAM_CLIENTS, STREAM_DROPPED

log = structlog.get_logger("tracking_api.stream")

CHANNELS = ("ctt_positions", "ctt_alert_events", "ctt_geofence", revocations.CHANNEL)
QUEUE_SIZE = 2_000
RETRY_S = 2.0
# Alert changes read per query, live or replayed: the memory bound of a reconnecting
# client's replay, however long its gap (there is no cap on the gap itself).
PAGE = 500
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Shipment ids start at 1: a resync event concerns no shipment.
NO_SHIPMENT = 0

# By seq, never by id: seq is given at commit, so an event committed late can
# never have a number below one a reader has already passed.
_ALERT_EVENTS = """
SELECT e.seq AS event_seq, e.id AS event_row, e.event AS event_kind, v.*
FROM alert_events e JOIN alert_view v ON v.id = e.alert_id
WHERE e.seq > %s ORDER BY e.seq LIMIT %s
"""
# alert_events may be pruned: what a resuming client's Last-Event-ID is compared with.
_KEPT = "SELECT min(seq) AS oldest, coalesce(max(seq), 0) AS newest FROM alert_events"
_POSITIONS = """
SELECT s.id AS shipment, s.reference, s.tracker_id AS device, lp.ts, lp.lon, lp.lat, lp.spd, lp.hdg,
       lp.received_at, d.state
FROM latest_positions lp
JOIN shipments s ON s.tracker_id = lp.device_id AND s.status = 'in_transit'
LEFT JOIN devices d ON d.device_id = lp.device_id
WHERE lp.received_at > %s
"""
_REGIONS = "SELECT shipment_id, array_agg(region_code) AS regions FROM shipment_regions GROUP BY shipment_id"
_OPEN = """
SELECT shipment_id, array_agg(DISTINCT type ORDER BY type) AS types FROM alerts
WHERE ended_at IS NULL AND status <> 'resolved' AND (%(all)s OR shipment_id = ANY(%(ids)s))
GROUP BY shipment_id
"""
_START = """
SELECT coalesce((SELECT max(seq) FROM alert_events), 0) AS alert_seq,
       coalesce((SELECT max(received_at) FROM latest_positions), 'epoch') AS received_at
"""


def _default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot encode {type(value).__name__}")


_json = msgspec.json.Encoder(enc_hook=_default).encode


@dataclass(frozen=True)
class Event:
    """One server-sent event; ``id`` only on alert events (those can be replayed): the change's
    ``seq``. ``row`` is its ``alert_events.id``, what other tables refer to (push deliveries)."""

    kind: str
    shipment: int
    data: dict[str, Any]
    id: int | None = None
    row: int | None = None

    def encode(self) -> bytes:
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.kind}\ndata: ".encode() + _json(self.data) + b"\n\n"


# Wakes a stream that must end (Subscriber.ended); never sent.
END = Event("end", NO_SHIPMENT, {})


def alert_event(row: dict[str, Any]) -> Event:
    """An ``alert_events`` row joined with ``alert_view``: the one alert object and what changed."""
    return Event("alert", row["shipment"], to_dict(alert_change(row["event_kind"], row)), row["event_seq"],
                 row["event_row"])


def resync_event(after: int, oldest: int | None, newest: int) -> Event:
    """Tells a client resuming after seq ``after`` that changes it missed are no longer kept (or
    that its id is not from this database): it must reload its alerts. Its id is the newest
    change kept, so that the client's next reconnect resumes from there."""
    return Event("resync", NO_SHIPMENT, {"after": after, "oldest": oldest, "newest": newest}, newest)


def position_event(row: dict[str, Any], open_alerts: Iterable[str] = ()) -> Event:
    props = {k: row[k] for k in ("shipment", "reference", "device", "ts", "spd", "hdg", "state")}
    props["open_alerts"] = sorted(open_alerts)
    feature = {"type": "Feature", "id": row["shipment"],
               "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]}, "properties": props}
    return Event("position", row["shipment"], feature)


@dataclass(eq=False)
class Subscriber:
    caller: Principal
    kinds: frozenset[str]
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    dropped: bool = False
    # Why the stream must end now (its token was revoked); its expiry the stream checks itself.
    ended: str | None = None


class Hub:
    """Listens once, fans out to every subscriber."""

    def __init__(self, database_url: str, pool: AsyncConnectionPool) -> None:
        self._url = database_url
        self._pool = pool
        self._subscribers: set[Subscriber] = set()
        self._regions: dict[int, frozenset[str]] = {}
        # The latest position of every in-transit truck, kept current from the
        # notifications: GET /positions/latest answers from here, not from SQL.
        self._rows: dict[int, dict[str, Any]] = {}
        self._open: dict[int, frozenset[str]] = {}
        self._features: dict[int, bytes] = {}
        self._alert_seq = 0
        self._received_at: datetime | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        # Called with every batch of alert changes (Web Push: tracking_api.push); must not block.
        self.alert_listeners: list[Callable[[list[Event]], None]] = []
        # Revoked tokens: every request and every open stream is checked against them.
        self.revocations = revocations.Revocations(pool)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self, caller: Principal, kinds: frozenset[str] = frozenset({"position", "alert"})) -> Subscriber:
        sub = Subscriber(caller, kinds)
        if self.revocations.known(caller.token_id):  # revoked between its request's check and now
            sub.ended = "token revoked"
        self._subscribers.add(sub)
        STREAM_CLIENTS.set(len(self._subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        STREAM_CLIENTS.set(len(self._subscribers))

    def may_see(self, caller: Principal, shipment_id: int) -> bool:
        return access.may_see(caller, self._regions.get(shipment_id, frozenset()))

    async def replay(self, caller: Principal, after: int) -> AsyncIterator[Event]:
        """The alert changes after seq ``after`` that ``caller`` may see (a reconnecting client's
        gap), a page at a time; or one ``resync`` event when some of them are no longer kept."""
        async with self._pool.connection() as conn:
            kept = await (await conn.cursor(row_factory=dict_row).execute(_KEPT)).fetchone()
        assert kept is not None
        oldest, newest = kept["oldest"], kept["newest"]
        # after + 1 == oldest: the client saw the event just before the oldest kept, nothing is lost.
        if after > newest or (oldest is not None and after + 1 < oldest):
            yield resync_event(after, oldest, newest)
            return
        async for page in self._alert_changes(after):
            await self._know_regions(page)
            for event in page:
                if self.may_see(caller, event.shipment):
                    yield event

    def snapshot(self, caller: Principal) -> list[Event]:
        """Every in-transit truck's latest position that ``caller`` may see."""
        return [position_event(row, self._open.get(sid, ())) for sid, row in self._rows.items()
                if self.may_see(caller, sid)]

    def latest(self, caller: Principal) -> bytes:
        """The FeatureCollection of ``GET /positions/latest`` for ``caller``, from memory."""
        features = [f for sid, f in sorted(self._features.items()) if self.may_see(caller, sid)]
        return b'{"type":"FeatureCollection","features":[' + b",".join(features) + b"]}"

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except (psycopg.OperationalError, OSError) as exc:
                log.warning("stream listener lost the database, retrying", error=str(exc).strip())
            except Exception:  # the stream must outlive any one bad event
                log.exception("stream listener failed, restarting")
            self.ready.clear()
            self.revocations.current = False  # may miss revocations now: is_revoked asks the database
            await asyncio.sleep(RETRY_S)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._url, autocommit=True,
                                                         application_name="ctt-api-stream") as conn:
            for channel in CHANNELS:
                await conn.execute(f"LISTEN {channel}")
            await self._revocations()
            self.revocations.current = True
            await self._load_regions()
            await self._load_positions()
            if self._received_at is None:  # first start: only what happens from now on is news
                async with self._pool.connection() as q:
                    start = await (await q.cursor(row_factory=dict_row).execute(_START)).fetchone()
                assert start is not None
                self._alert_seq, self._received_at = start["alert_seq"], start["received_at"]
            # Whatever happened while not listening (a reconnect) goes out first.
            await self._alert_events()
            await self._positions()
            self.ready.set()
            async for note in conn.notifies():
                if note.channel == "ctt_alert_events":
                    await self._alert_events()
                elif note.channel == "ctt_positions":
                    await self._positions()
                elif note.channel == revocations.CHANNEL:
                    await self._revocations()
                else:  # shipments or their regions changed: who is in transit, who sees what
                    await self._load_regions()
                    await self._load_positions()

    async def _revocations(self) -> None:
        """Reload the revoked tokens and end the open streams of those just revoked."""
        if not await self.revocations.load():
            return
        for sub in list(self._subscribers):
            if self.revocations.known(sub.caller.token_id):
                sub.ended = "token revoked"
                self.unsubscribe(sub)
                with contextlib.suppress(asyncio.QueueFull):  # wakes its stream; a full queue is read soon
                    sub.queue.put_nowait(END)

    async def _load_regions(self) -> None:
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_REGIONS)).fetchall()
        self._regions = {r["shipment_id"]: frozenset(r["regions"]) for r in rows}

    async def _alert_changes(self, after: int) -> AsyncIterator[list[Event]]:
        """Every alert change after seq ``after``, a page at a time, until the newest."""
        while True:
            async with self._pool.connection() as conn:
                cur = conn.cursor(row_factory=dict_row)
                rows = await (await cur.execute(_ALERT_EVENTS, (after, PAGE))).fetchall()
            if rows:
                after = rows[-1]["event_seq"]
                yield [alert_event(r) for r in rows]
            if len(rows) < PAGE:
                return

    async def _know_regions(self, events: list[Event]) -> None:
        if any(e.shipment not in self._regions for e in events):
            await self._load_regions()  # a shipment registered since the last load

    async def _alert_events(self) -> None:
        async for events in self._alert_changes(self._alert_seq):
            assert events[-1].id is not None
            self._alert_seq = events[-1].id
            await self._know_regions(events)
            self._fan_out(events)
            for listener in self.alert_listeners:
                listener(events)
            await self._load_open({e.shipment for e in events})

    async def _positions(self) -> None:
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_POSITIONS,
                                                                          (self._received_at,))).fetchall()
        if rows:
            self._received_at = max(r["received_at"] for r in rows)
            self._fan_out(self._remember(row) for row in rows)

    async def _load_positions(self) -> None:
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_POSITIONS, (EPOCH,))).fetchall()
        self._rows, self._features = {}, {}
        for row in rows:
            self._remember(row)
        await self._load_open(None)

    async def _load_open(self, shipments: set[int] | None) -> None:
        """Open alert types of ``shipments`` (all when None), and their features."""
        params = {"all": shipments is None, "ids": sorted(shipments or ())}
        async with self._pool.connection() as conn:
            rows = await (await conn.cursor(row_factory=dict_row).execute(_OPEN, params)).fetchall()
        found = {r["shipment_id"]: frozenset(r["types"]) for r in rows}
        if shipments is None:
            self._open = found
        else:
            for sid in shipments:
                self._open[sid] = found.get(sid, frozenset())
        for sid in self._rows if shipments is None else shipments & self._rows.keys():
            self._remember(self._rows[sid])

    def _remember(self, row: dict[str, Any]) -> Event:
        event = position_event(row, self._open.get(row["shipment"], ()))
        self._rows[row["shipment"]] = row
        self._features[row["shipment"]] = _json(event.data)
        return event

    def _fan_out(self, events: Iterable[Event]) -> None:
        batch = list(events)
        for sub in list(self._subscribers):
            for event in batch:
                if event.kind not in sub.kinds or not self.may_see(sub.caller, event.shipment):
                    continue
                try:
                    sub.queue.put_nowait(event)
                except asyncio.QueueFull:
                    sub.dropped = True  # the client reconnects and resumes from its last event id
                    STREAM_DROPPED.inc()
                    self.unsubscribe(sub)
                    break
