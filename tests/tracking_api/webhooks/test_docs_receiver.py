"""The receiver example of docs/integration.md ("Webhooks"), run as written: it accepts our
signed webhooks, refuses a forged or stale one, and drops a repeated webhook-id."""

from __future__ import annotations

import re
import threading
import time
from http.server import HTTPServer
from pathlib import Path
from typing import Any

from tracking_api.webhooks.sender import post
from tracking_api.webhooks.signing import headers, new_secret

DOC = Path(__file__).resolve().parents[3] / "docs/integration.md"


def _example() -> str:
    section = DOC.read_text().split("\n## Webhooks\n", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, re.S)
    (code,) = blocks
    return code


def test_the_documented_receiver_verifies_our_webhooks() -> None:
    namespace: dict[str, Any] = {"__name__": "docs_receiver"}
    exec(compile(_example(), str(DOC), "exec"), namespace)  # the documentation's own code, run as written
    secret = new_secret()
    namespace["SECRET"] = secret
    server = HTTPServer(("127.0.0.1", 0), namespace["Receiver"])
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    body = b'{"type":"webhook.test","timestamp":"2026-12-01T10:00:00.000000Z","data":{"webhook":1,"by":"x"}}'
    try:
        def send(h: dict[str, str], data: bytes = body) -> int | None:
            return post(url, data, h, 5.0, allow_private=True, allow_http=True).status

        good = headers(secret, "msg_1", int(time.time()), body)
        assert send(good) == 204
        assert send(good) == 204 and namespace["seen"] == {"msg_1"}  # a repeat: accepted, not processed again
        assert send(good, body.replace(b'"x"', b'"y"')) == 401  # tampered body
        assert send(headers(new_secret(), "msg_2", int(time.time()), body)) == 401  # another secret
        assert send(headers(secret, "msg_3", int(time.time()) - 600, body)) == 401  # stale
        assert send({k: v for k, v in good.items() if k != "webhook-signature"}) == 401
    finally:
        server.shutdown()
        server.server_close()
