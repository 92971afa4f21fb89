"""Which URLs webhooks may reach (SSRF): refused when subscribing and again when sending."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.tracking_api.webhooks.receiver import Receiver
from tracking_api.webhooks.sender import post
from tracking_api.webhooks.urls import url_problem

PUBLIC = "https://192.88.99.9/hooks"  # a public address literal: needs no DNS


@pytest.mark.parametrize(("url", "problem"), [
    ("http://192.88.99.9/hooks", "not an https:// URL"),
    ("ftp://192.88.99.9/hooks", "not an https:// URL"),
    ("https:///hooks", "has no host"),
    ("https://user:pw@192.88.99.9/hooks", "credentials"),
    ("https://192.88.99.9:99999/hooks", "not a URL"),
    ("https://127.0.0.1/hooks", "non-public address (127.0.0.1)"),
    ("https://localhost/hooks", "non-public address"),  # a name resolving to loopback
    ("https://10.1.2.3/hooks", "non-public address (10.1.2.3)"),
    ("https://172.16.0.1/hooks", "non-public address (172.16.0.1)"),
    ("https://192.168.1.1/hooks", "non-public address (192.168.1.1)"),
    ("https://169.254.169.254/latest/meta-data", "non-public address (169.254.169.254)"),
    ("https://100.64.0.1/hooks", "non-public address (100.64.0.1)"),  # carrier-grade NAT
    ("https://0.0.0.0/hooks", "non-public address (0.0.0.0)"),
    ("https://2130706433/hooks", "non-public address (127.0.0.1)"),  # decimal
    ("https://0177.0.0.1/hooks", "non-public address (127.0.0.1)"),  # octal
    ("https://0x7f.1/hooks", "non-public address (127.0.0.1)"),  # hex, short form
    ("https://[::1]/hooks", "non-public address (::1)"),
    ("https://[::ffff:127.0.0.1]/hooks", "non-public address (::ffff:7f00:1)"),
    ("https://[fe80::1]/hooks", "non-public address (fe80::1)"),
    ("https://[fc00::1]/hooks", "non-public address (fc00::1)"),
    ("https://no-such-host.invalid/hooks", "does not resolve"),
])
def test_refused(url: str, problem: str) -> None:
    found = url_problem(url, allow_private=False, allow_http=False)
    assert found is not None and problem in found


def test_allowed() -> None:
    assert url_problem(PUBLIC, allow_private=False, allow_http=False) is None
    # allow_private (an admin's or operator's decision) lifts the address rule and allows http.
    assert url_problem("http://127.0.0.1:8080/hooks", allow_private=True, allow_http=False) is None
    # The test switch allows http, not private addresses.
    assert "non-public" in str(url_problem("http://127.0.0.1/hooks", allow_private=False, allow_http=True))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_the_sender_checks_again_at_delivery(receiver: Receiver) -> None:
    """A subscription accepted earlier whose host now resolves to loopback (DNS rebinding):
    nothing is sent."""
    for url in (receiver.url, receiver.url.replace("127.0.0.1", "localhost"),
                receiver.url.replace("127.0.0.1", "2130706433")):
        answer = post(url, b"{}", {}, 2.0, allow_private=False, allow_http=True)
        assert answer.status is None and "non-public address" in str(answer.error)
    assert receiver.received == []
    assert post(receiver.url, b"{}", {}, 2.0, allow_private=True, allow_http=False).delivered


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    target = Receiver()
    try:
        receiver.redirect_to = target.url
        answer = post(receiver.url, b"{}", {}, 2.0, allow_private=True, allow_http=False)
        assert answer.status == 302 and not answer.delivered and answer.error == "HTTP 302"
        assert target.received == []
    finally:
        target.close()
