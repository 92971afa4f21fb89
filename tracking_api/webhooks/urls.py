"""Which webhook URLs the API accepts and calls: https to a host whose every address is
public; http and private addresses only for a subscription an admin or operator marked
``allow_private`` (http also under ``CTT_WEBHOOK_ALLOW_HTTP``, the test suite's receiver).
Checked when a subscription is made or changed and again at every delivery (``sender``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from tracking_api.addresses import address_problem


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str  # with its query


def parse(url: str, allow_http: bool) -> Target:
    """``url`` split for a POST; ``ValueError`` naming it when it is not an absolute https (or
    allowed http) URL with a host and no credentials."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ValueError(f"url {url!r} is not a URL: {exc}") from exc
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        raise ValueError(f"url {url!r} is not an https:// URL")
    if not parts.hostname:
        raise ValueError(f"url {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"url {url!r} carries credentials: sign with the secret instead")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path)


def url_problem(url: str, allow_private: bool, allow_http: bool) -> str | None:
    """Why the API will not call ``url``, or None. ``allow_private`` lifts the address check
    and allows http; ``allow_http`` allows http only."""
    try:
        target = parse(url, allow_http or allow_private)
    except ValueError as exc:
        return str(exc)
    return None if allow_private else address_problem(target.host, target.port)
