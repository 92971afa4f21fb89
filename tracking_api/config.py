"""API settings (``CTT_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from ctt_common.settings import ServiceSettings

# The push services of the browsers officers use (Chrome and Android: FCM; Firefox: Mozilla
# autopush; Safari: Apple; Edge on Windows: WNS).
DEFAULT_PUSH_HOSTS = ("fcm.googleapis.com", "android.googleapis.com", "updates.push.services.mozilla.com",
                      "web.push.apple.com", "*.push.apple.com", "*.notify.windows.com")


class ApiSettings(ServiceSettings):
    """The API's own fields; database, broker and log level come from the base."""

    readiness_timeout_s: float = 2.0
    # Larger request bodies are a 413 (tracking_api/body_limit.py).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A track query returning more fixes is a 422 asking for a shorter range or a lower max_points.
    track_max_rows: int = Field(default=50_000, ge=2)
    # The longest time range of one export (GET /exports/...), days: a longer one is a 422.
    export_max_days: int = Field(default=31, ge=1, le=366)
    # Refused logins (POST /session) per client address within login_window_s before a 429.
    login_max_failures: int = Field(default=10, ge=1)
    login_window_s: float = Field(default=60.0, gt=0)
    # Bearer tokens: HS256 with this secret; exp, iss and aud are required. Change the secret in production.
    jwt_secret: str = Field(default="ctt-local-jwt-secret-change-me-in-production", min_length=32)
    jwt_issuer: str = "ctt"
    jwt_audience: str = "ctt-api"
    token_ttl_s: int = Field(default=12 * 3600, gt=0)
    # The longest lifetime (exp - iat) a token may have: longer ones are refused when verified,
    # whatever signed them. A stolen token is good until it expires or is revoked.
    token_max_ttl_s: int = Field(default=24 * 3600, gt=0)
    # A comment line this often keeps proxies from closing an idle event stream.
    stream_keepalive_s: float = Field(default=15.0, gt=0)
    # A stream ticket (POST /stream/tickets) opens one stream within this many seconds.
    stream_ticket_ttl_s: float = Field(default=30.0, gt=0, le=300)
    # The pages (control room, officers, KPI) and their npm libraries (``npm ci`` in this folder).
    dashboards_dir: Path = Path(__file__).resolve().parents[1] / "dashboards"
    # A raster tile server for the maps ({z}/{x}/{y}), where one is reachable; without it the maps
    # draw the offline country outlines only.
    tile_url: str | None = None
    tile_attribution: str = ""
    # Web Push (docs/push.md). The VAPID key pair signs every push; a missing file is created
    # (EC P-256, mode 0600) at start-up. Every API process must use the same key: browsers
    # subscribed with its public key, and push services refuse pushes signed with another.
    vapid_private_key_file: Path = Path(__file__).resolve().parents[1] / ".ctt" / "vapid_private.pem"
    # The contact push services see in every push (VAPID "sub"): a mailto: or https: URL.
    vapid_subject: str = Field(default="mailto:control-room@customs.example", pattern=r"^(mailto:|https://)\S+$")
    # Push services are https. http:// endpoints only for the test suite's local push service:
    # otherwise anyone with a token could make the API post to internal http services.
    push_allow_insecure_endpoints: bool = False
    # The push services subscriptions may point at (a host, or *.suffix); their addresses must be
    # public too (no private, loopback or link-local address, checked at subscription and send).
    push_service_hosts: list[str] = Field(default_factory=lambda: list(DEFAULT_PUSH_HOSTS), min_length=1)
    # Subscriptions per user (token subject): a new browser past the cap replaces the oldest.
    push_max_subscriptions: int = Field(default=5, ge=1, le=100)
    push_timeout_s: float = Field(default=10.0, gt=0)
    # Pushes in flight at once per API process (each holds a thread while it waits).
    push_concurrency: int = Field(default=8, ge=1, le=64)
    # Outbound webhooks (docs/integration.md, "Webhooks"). Each API process runs a dispatcher
    # unless this is off; several deliver each event once between them.
    webhooks_dispatch: bool = True
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=60)
    # Retries: a delay drawn uniformly from [0, min(cap, base * 2^(attempt - 1))] (full jitter),
    # for retry_for seconds after the event (or a manual redelivery); then the delivery is dead.
    webhook_retry_base_s: float = Field(default=5.0, gt=0)
    webhook_retry_cap_s: float = Field(default=3600.0, gt=0)
    webhook_retry_for_s: float = Field(default=86400.0, gt=0)
    # A subscription whose deliveries all failed for this long is disabled (an admin re-enables it).
    webhook_disable_after_s: float = Field(default=86400.0, gt=0)
    # Deliveries in flight at once per API process (each holds a thread while it waits).
    webhook_concurrency: int = Field(default=16, ge=1, le=128)
    # How often the dispatcher looks for due retries when no NOTIFY wakes it (s).
    webhook_poll_s: float = Field(default=1.0, gt=0, le=60)
    # http:// webhook URLs without allow_private: the test suite's receiver only.
    webhook_allow_http: bool = False
    # Devices: the battery trend's window (hours of readings), and how long after its shipment
    # arrived a device not yet returned is flagged missing.
    battery_trend_h: float = Field(default=24.0, gt=0, le=24 * 31)
    device_return_grace_s: float = Field(default=86_400.0, ge=0)

    # Idempotency keys (tracking_api/idempotency.py) are kept this long (s); the sweep deletes older ones.
    idempotency_ttl_s: float = Field(default=7 * 86_400.0, gt=0)
    # The largest photo an officer may upload (POST /alerts/{id}/photos, /cases/{id}/photos), bytes:
    # the body size limit of those routes (the others keep max_body_bytes).
    photo_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # A photo with more pixels is refused before it is decoded (a decompression bomb).
    photo_max_pixels: int = Field(default=50_000_000, ge=1)

    # The escalation sweep (tracking_api/escalation.py) runs this often in each API process, one
    # process at a time doing the work; 0: this process never sweeps (another does).
    escalation_sweep_s: float = Field(default=15.0, ge=0)

    @model_validator(mode="after")
    def _no_test_switches_in_production(self) -> Self:
        if self.env == "production" and self.push_allow_insecure_endpoints:
            raise ValueError("CTT_PUSH_ALLOW_INSECURE_ENDPOINTS is for the test suite's local push service only: "
                             "refused with CTT_ENV=production")
        if self.env == "production" and self.webhook_allow_http:
            raise ValueError("CTT_WEBHOOK_ALLOW_HTTP is for the test suite's receiver only: refused with "
                             "CTT_ENV=production")
        return self
