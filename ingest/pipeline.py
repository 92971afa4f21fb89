"""The ingest loop: collect a batch from the broker, parse, commit, then
acknowledge. Nothing is acknowledged before it is committed, so a crash at any
point loses nothing: the broker redelivers and dedup keeps one copy."""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog

from geofence.warmup import warm_up
from ingest import metrics, workers
from ingest.acks import AckTracker
from ingest.alerting import Alerting, Outcome
from ingest.batch import Batch
from ingest.config import IngestSettings
from ingest.leadership import Leadership
from ingest.messages import Limits, Parsed, parse_message, refused_message
from ingest.mqtt import Inbound, MqttSource
from ingest.store import DATABASE_ERRORS, Store, describe, is_transient
from protocol.records import DeviceAck, encode
from protocol.topics import ack_topic

log = structlog.get_logger("ingest.pipeline")
SUMMARY_EVERY_S = 60.0


class DeadLetterRefusedError(RuntimeError):
    """The database refused even the dead letter that records a refused message."""


# A batch failing with these waits and is retried whole; nothing in it is to blame.
_RETRY_ERRORS: tuple[type[Exception], ...] = (*DATABASE_ERRORS, DeadLetterRefusedError)


class Pipeline:
    def __init__(self, settings: IngestSettings, source: MqttSource, store: Store,
                 alerting: Alerting | None = None, leadership: Leadership | None = None) -> None:
        self._settings = settings
        self._source = source
        self._store = store
        self._alerting = alerting
        self._leadership = leadership
        self._started_s = time.time()
        self._heartbeat_at = 0.0
        self._swept_at = 0.0
        self._workflow_at = 0.0
        self._short_batch = False  # the last collect returned fewer messages than a full batch
        self._acks = AckTracker()
        self._limits = Limits(
            max_payload_bytes=settings.max_payload_bytes,
            max_records=settings.max_records_per_message,
            max_future_ms=int(settings.max_future_s * 1000),
            max_age_ms=int(settings.max_fix_age_s * 1000),
        )
        self._summary = Counter[str]()
        self._summary_at = time.monotonic()

    def run(self, stop: threading.Event, until_drained: bool = False) -> None:
        """Process batches until ``stop`` is set (or, ``until_drained``, the session is empty)."""
        while not stop.is_set():
            messages = self._collect()
            if messages:
                self.process(messages, stop)
            self._short_batch = len(messages) < self._settings.batch_max_messages
            if self._alerting:
                self._housekeeping(self._alerting)
            if until_drained and self.drained() and not messages and self._source.held() == 0:
                return

    def process(self, messages: list[Inbound], stop: threading.Event) -> None:
        started = time.monotonic()
        now_ms = int(time.time() * 1000)
        parsed = [(m, self._parse(m, now_ms)) for m in messages]
        batch = Batch()
        for m, p in parsed:
            batch.add(p, m.received_ms)
        committed = self._commit(batch, parsed, stop)
        if committed is None:
            return  # stopping while the database is down: the broker keeps the messages
        acked, outcome = committed
        if self._alerting is not None:
            if outcome is not None:
                self._alerting.adopt(outcome)
            else:  # evaluation failed or was skipped: these trackers are replayed next time
                self._alerting.forget(list(batch.last_seen))
        # Acks before PUBACKs, on one connection, so in this order: a worker that dies in
        # between has its messages redelivered to its session, and the redelivery (records all
        # stored) is answered with the ack again. PUBACKs first, a death before the acks went
        # out lost them for good: the broker forgets the messages, the device does not resend.
        for device_id, seq in acked.items():
            self._source.publish(ack_topic(device_id), encode(DeviceAck(seq)), retain=True)
        self._source.ack(messages)
        metrics.DEVICE_ACKS.inc(len(acked))
        self._observe(messages, batch, started)

    def _parse(self, m: Inbound, now_ms: int) -> Parsed:
        """The boundary of one message: parse_message refuses bad input itself, and
        should anything still escape it, that one message is dead-lettered with the
        exception as reason and the batch goes on."""
        try:
            return parse_message(m.topic, m.payload, now_ms, self._limits)
        except Exception as exc:
            log.exception("handling a message failed; dead-lettered", topic=m.topic)
            return refused_message(m.topic, m.payload, f"ingest failed on this message: {describe(exc)}", "handling")

    def _collect(self) -> list[Inbound]:
        """A batch: wait up to the batch time for more messages, then take what is
        already queued, up to the batch size. Empty after 0.2 s of silence."""
        inbox = self._source.inbox
        try:
            messages = [inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self._settings.batch_max_wait_ms / 1000
        while len(messages) < self._settings.batch_max_messages:
            remaining = deadline - time.monotonic()
            try:
                messages.append(inbox.get(timeout=remaining) if remaining > 0 else inbox.get_nowait())
            except queue.Empty:
                break
        return messages

    def _commit(self, batch: Batch, parsed: list[tuple[Inbound, Parsed]],
                stop: threading.Event) -> tuple[dict[str, int], Outcome | None] | None:
        """Write ``batch``, retrying while the database is down; None if stopped first."""
        delay = 0.25
        # Survives a retry: parts of a split batch committed before the database went away.
        acked: dict[str, int] = {}
        while not stop.is_set():
            try:
                outcome = self._write(batch, parsed, acked)
            except _RETRY_ERRORS as exc:
                metrics.DB_UP.set(0)
                metrics.DB_ERRORS.labels("transient").inc()
                log.warning("database unavailable, retrying", error=describe(exc), retry_in_s=delay)
                self._store.close()
                stop.wait(delay)
                delay = min(delay * 2, self._settings.db_retry_max_s)
                continue
            metrics.DB_UP.set(1)
            return acked, outcome
        return None

    def _write(self, batch: Batch, parsed: list[tuple[Inbound, Parsed]],
               acked: dict[str, int]) -> Outcome | None:
        """Write ``batch`` in one transaction; if the database refuses it (an error a
        retry cannot cure, see ``is_transient``), split it. Raises only transient errors."""
        alerting = self._alerting
        try:
            if alerting is None:
                written, outcome = self._store.write(batch, self._acks)
            else:
                written, outcome = self._store.write(
                    batch, self._acks,
                    lambda cur, fixes, seals, stale: alerting.on_batch(cur, batch, fixes, seals, stale))
        except Exception as exc:
            if is_transient(exc):
                raise
            metrics.DB_ERRORS.labels("refused").inc()
            log.warning("database refused a batch; splitting it", error=describe(exc), messages=len(parsed))
            self._split(parsed, exc, acked)
            return None  # the engine skipped these records: their trackers are replayed next time
        acked.update(written)
        return outcome

    def _split(self, parsed: list[tuple[Inbound, Parsed]], refusal: Exception, acked: dict[str, int]) -> None:
        """Messages the database refused together with ``refusal``: write each half
        alone, recursively, and dead-letter a single message it refuses. One bad
        message among n costs about 2 log2(n) transactions, never a loop."""
        if len(parsed) == 1:
            self._write_one(*parsed[0], refusal, acked)
            return
        half = len(parsed) // 2
        for part in (parsed[:half], parsed[half:]):
            batch = Batch()
            for m, p in part:
                batch.add(p, m.received_ms)
            try:
                acked.update(self._store.write(batch, self._acks)[0])
            except Exception as exc:
                if is_transient(exc):
                    raise
                self._split(part, exc, acked)

    def _write_one(self, m: Inbound, parsed: Parsed, refusal: Exception, acked: dict[str, int]) -> None:
        """Dead-letter one message the database refused alone, with the database's reason."""
        seqs = parsed.seqs()
        reason = f"database refused: {describe(refusal)}"
        refused = Batch()
        refused.add(refused_message(m.topic, m.payload, reason, "database", seqs[0] if len(seqs) == 1 else None),
                    m.received_ms)
        if parsed.device_id is not None:
            # Dead-lettered whole, every record of it is durably kept: acks move on.
            refused.seqs[parsed.device_id] = seqs
        try:
            acked.update(self._store.write(refused, self._acks)[0])
        except Exception as exc:
            # A database that cannot keep a dead letter is not refusing this message:
            # it is broken (disk full, schema changed); the batch waits and retries.
            raise DeadLetterRefusedError(f"could not dead-letter a message of {m.topic!r}: {describe(exc)}") from exc

    def drained(self) -> bool:
        """Whether ingest has caught up with what the broker queued for it: connected for
        ``drain_settle_s`` (the broker sends a session's queue right after CONNACK) and the
        last collect returned fewer messages than a full batch, so nothing more was waiting.
        Until then a tracker's silence may only be its fixes still queued in the broker."""
        since = self._source.connected_at
        settled = since is not None and time.monotonic() - since >= self._settings.drain_settle_s
        return settled and self._short_batch

    def _housekeeping(self, alerting: Alerting) -> None:
        """Every heartbeat: say this worker is alive and whether it has drained, and
        stand for leader. The leader alone runs the wall-clock rules every sweep
        interval and relays the officers' acts every poll interval. A database outage
        postpones all of it; a job that fails otherwise is counted and retried."""
        now = time.monotonic()
        if self._leadership is None:
            return
        if now - self._heartbeat_at >= self._settings.heartbeat_s and not self._elect(alerting):
            return
        if not self._leadership.leading:
            return
        jobs: list[tuple[str, Callable[[Any], Outcome]]] = []
        if now - self._swept_at >= self._settings.sweep_interval_s:
            self._swept_at = now
            jobs.append(("sweep", lambda cur: alerting.sweep(cur, self._all_drained(cur))))
        if now - self._workflow_at >= self._settings.workflow_poll_s:
            self._workflow_at = now
            jobs.append(("workflow", alerting.workflow))
        for name, job in jobs:
            if not self._contained(name, partial(self._lead_job, alerting, job)):
                return

    def _elect(self, alerting: Alerting) -> bool:
        """Heartbeat and election; False if the database is away (everything waits)."""
        assert self._leadership is not None
        leadership = self._leadership
        self._heartbeat_at = time.monotonic()
        was_leading = leadership.leading
        drained = self.drained()
        metrics.BACKLOG_DRAINED.set(int(drained))

        def beat() -> None:
            leading = leadership.elect()
            leadership.session(lambda cur: workers.heartbeat(cur, leadership.worker, self._started_s, drained,
                                                             leading))

        if not self._contained("heartbeat", beat):
            return False
        if leadership.leading and not was_leading:
            # The relay resumes from the stored cursor: another leader may have moved it.
            alerting.lead()
            self._swept_at = self._workflow_at = 0.0
        return True

    def _all_drained(self, cur: Any) -> bool:
        """This worker and every other worker seen lately have drained their backlog."""
        fresh_s = 3 * self._settings.heartbeat_s
        others = workers.lagging(cur, self._settings.worker_name, self._settings.worker_expiry_s, fresh_s)
        metrics.WORKERS_LAGGING.set(len(others))
        return self.drained() and not others

    def _lead_job(self, alerting: Alerting, job: Callable[[Any], Outcome]) -> None:
        """Run a once-only job under the leader lock; the outcome is published after commit."""
        assert self._leadership is not None
        alerting.adopt(self._leadership.transact(job))

    def _contained(self, name: str, work: Callable[[], object]) -> bool:
        """The boundary of one housekeeping job: it must never stop ingest. False if
        the database is unavailable (the caller postpones the rest)."""
        assert self._leadership is not None
        try:
            work()
        except Exception as exc:
            if is_transient(exc):
                log.warning("alert housekeeping postponed: database unavailable", job=name, error=str(exc).strip())
                self._leadership.check()  # a dead session took the lock with it; a deadlock did not
                return False
            metrics.HOUSEKEEPING_ERRORS.labels(name).inc()
            log.exception("alert housekeeping failed; retried next interval", job=name)
        return True

    def _observe(self, messages: list[Inbound], batch: Batch, started: float) -> None:
        now = time.time()
        metrics.BATCH_SECONDS.observe(time.monotonic() - started)
        metrics.BATCH_MESSAGES.observe(len(messages))
        metrics.LAG_SECONDS.set(now - messages[0].received_ms / 1000)
        for kind, count in Counter(m.topic.rsplit("/", 1)[-1] for m in messages).items():
            metrics.MESSAGES.labels(kind).inc(count)
        metrics.RECORDS.labels("pos").inc(len(batch.fixes))
        metrics.RECORDS.labels("seal").inc(len(batch.seals))
        metrics.RECORDS.labels("status").inc(len(batch.statuses))
        metrics.DEAD_LETTERS.inc(len(batch.rejects))
        if batch.fixes:
            metrics.FIX_AGE_SECONDS.observe(now - batch.fixes[-1][2] / 1000)
        self._summary.update(messages=len(messages), fixes=len(batch.fixes), seal_events=len(batch.seals),
                             statuses=len(batch.statuses), dead_letters=len(batch.rejects), batches=1)
        if time.monotonic() - self._summary_at >= SUMMARY_EVERY_S:
            log.info("ingest summary", period_s=round(time.monotonic() - self._summary_at), **self._summary)
            self._summary.clear()
            self._summary_at = time.monotonic()


def run_service(settings: IngestSettings, stop: threading.Event, retire: bool = False) -> None:
    """Connect to broker and database and ingest until ``stop`` is set. ``retire``: leave the
    share group, store what the worker's session still holds, then end the session and
    strike the worker from ``ingest_workers`` (scaling down for good)."""
    if settings.geofence:
        # Before taking traffic: compiled inside the first batch, the kernels would hold its
        # commit (and the devices' acks) for as long as compiling takes (~20 s cold).
        log.info("geofence kernels ready", seconds=round(warm_up(), 2))
    source = MqttSource(settings, retire)
    store = Store(settings.database_url, settings.dead_letter_max_bytes)
    alerting = (Alerting(settings.rules(), source.publish, settings.suspect_seq_jump, store.countries)
                if settings.geofence else None)
    leadership = Leadership(settings.database_url, settings.worker_name)
    pipeline = Pipeline(settings, source, store, alerting, leadership)
    source.start()
    log.info("ingest started", broker=f"{settings.broker_host}:{settings.broker_port}",
             worker=settings.worker_name, client_id=settings.client_id)
    try:
        pipeline.run(stop, until_drained=retire)
        if retire and not stop.is_set():
            leadership.session(lambda cur: workers.retire(cur, settings.worker_name))
            log.info("worker retired: its session is ended and its share goes to the others",
                     worker=settings.worker_name)
    finally:
        source.stop()
        store.close()
        leadership.close()
        log.info("ingest stopped")
