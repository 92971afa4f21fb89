"""Simulator settings: the broker from the ``CTT_*`` base (its TLS ports here), the corridor from
``CTT_SIM_CORRIDOR``."""

from __future__ import annotations

from pydantic import Field

from ctt_common.settings import ServiceSettings


class SimSettings(ServiceSettings):
    corridor: str = Field(default="northern", validation_alias="CTT_SIM_CORRIDOR")
    # Simulated devices connect over TLS: with a client certificate, or with a secret.
    broker_cert_port: int = Field(default=8883, ge=1, le=65535)
    broker_secret_port: int = Field(default=8885, ge=1, le=65535)
