"""Images for the photo tests, made with Pillow in memory (a few hundred bytes each)."""

from __future__ import annotations

import io

from PIL import Image

TAKEN: dict[str, str | float] = {"taken_at": "2026-11-23T07:10:00Z", "lat": -3.3961, "lon": 38.5561, "accuracy_m": 12.0,
         "note": "seal wire cut, rear door"}


def image(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), colour: str = "teal") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt)
    return out.getvalue()


def jpeg_headers(headers: dict[str, str], content_type: str = "image/jpeg") -> dict[str, str]:
    return {**headers, "Content-Type": content_type}
