"""Standard Webhooks signatures: the reference library's published vector, and what a receiver refuses."""

from __future__ import annotations

import pytest

from tests.tracking_api.webhooks.receiver import independent_check
from tracking_api.webhooks.signing import SignatureError, headers, new_secret, secret_key, sign, verify

# standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_published_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    # The same secret without its prefix, as the reference library also accepts it.
    assert sign(VECTOR_SECRET.removeprefix("whsec_"), VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE
    verify(VECTOR_SECRET, {"Webhook-Id": VECTOR_ID, "Webhook-Timestamp": str(VECTOR_TIMESTAMP),
                           "Webhook-Signature": VECTOR_SIGNATURE}, VECTOR_BODY, now=VECTOR_TIMESTAMP + 10)
    assert independent_check(VECTOR_SECRET, VECTOR_ID, str(VECTOR_TIMESTAMP), VECTOR_BODY, VECTOR_SIGNATURE)


def test_new_secrets_are_whsec_32_random_bytes() -> None:
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_") and a != b and len(secret_key(a)) == 32


def _signed(now: int = 1_700_000_000) -> dict[str, str]:
    return headers(VECTOR_SECRET, "msg_7", now, b'{"a":1}')


@pytest.mark.parametrize(("change", "reason"), [
    ({"body": b'{"a":2}'}, "no v1 signature matches"),
    ({"webhook-id": "msg_8"}, "no v1 signature matches"),
    ({"webhook-timestamp": "1700000001"}, "no v1 signature matches"),
    ({"now": 1_700_000_000 + 301}, "more than 300 s"),
    ({"now": 1_700_000_000 - 301}, "more than 300 s"),
    ({"webhook-signature": "v1a,AAAA"}, "no v1 signature matches"),
    ({"webhook-signature": ""}, "missing"),
    ({"webhook-timestamp": "soon"}, "not an integer"),
    ({"secret": "whsec_" + "A" * 43 + "="}, "no v1 signature matches"),
])
def test_a_receiver_refuses(change: dict[str, object], reason: str) -> None:
    h = _signed() | {k: str(v) for k, v in change.items() if k.startswith("webhook-")}
    body = change.get("body", b'{"a":1}')
    secret = str(change.get("secret", VECTOR_SECRET))
    now = change.get("now", 1_700_000_000)
    assert isinstance(body, bytes) and isinstance(now, int)
    with pytest.raises(SignatureError, match=reason):
        verify(secret, h, body, now=now)


def test_one_valid_signature_among_several_is_enough() -> None:
    h = _signed()
    h["webhook-signature"] = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= {h['webhook-signature']}"
    verify(VECTOR_SECRET, h, b'{"a":1}', now=1_700_000_000)


def test_an_id_with_a_full_stop_is_refused() -> None:
    with pytest.raises(SignatureError, match="full stop"):
        sign(VECTOR_SECRET, "msg.1", 1, b"{}")
