"""The browser pages: control room at ``/``, officers at ``/officer/``, KPIs at
``/kpi/``, devices at ``/devices/``, their shared code at ``/static/``, and the npm libraries they use at
``/vendor/`` (only the files they load, never the whole ``node_modules``).

The pages are plain files (ES modules, no build step) talking to the API like
any other client; ``/config.json`` tells them what the deployment decided
(tile server, API base) without a token, since they need it before login.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from tracking_api import i18n
from tracking_api.config import ApiSettings

log = structlog.get_logger("tracking_api.pages")

# URL path -> folder under the dashboards directory.
PAGES = {"/officer": "officer", "/kpi": "kpi", "/devices": "devices", "/static": "common"}
VENDOR = {"leaflet": "node_modules/leaflet/dist", "topojson-client": "node_modules/topojson-client/dist",
          "world-atlas": "node_modules/world-atlas"}


class Language(BaseModel):
    code: str = Field(description="BCP 47 code: the catalogue /static/locales/<code>.json")
    name: str = Field(description="The language's own name")


class PageConfig(BaseModel):
    """What the pages need before login."""

    api_base: str = Field(description="Base path of the API")
    tile_url: str | None = Field(description="Raster tile server template, or null: offline outlines only")
    tile_attribution: str
    languages: list[Language] = Field(description="The message catalogues present, English first")


def mount(app: FastAPI, settings: ApiSettings, api_prefix: str) -> None:
    """Serve the pages from ``settings.dashboards_dir``; a missing library folder is
    logged (run ``npm ci`` there) and its pages load without it."""
    root = settings.dashboards_dir
    languages = [Language(code=c, name=n) for c, n in i18n.available(root)]
    config = PageConfig(api_base=api_prefix, tile_url=settings.tile_url, tile_attribution=settings.tile_attribution,
                        languages=languages)

    @app.get("/config.json", include_in_schema=False)
    async def page_config() -> PageConfig:
        return config

    for name, folder in VENDOR.items():
        _static(app, f"/vendor/{name}", root / folder)
    for path, folder in PAGES.items():
        _static(app, path, root / folder, html=True)
    _static(app, "/", root / "control", html=True)  # last: it matches every path


def _static(app: FastAPI, path: str, folder: Path, html: bool = False) -> None:
    if not folder.is_dir():
        log.warning("page folder missing, not served", path=path, folder=str(folder))
        return
    app.mount(path, StaticFiles(directory=folder, html=html), name=f"pages:{path}")
