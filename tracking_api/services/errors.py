"""Failures of a service operation, each with the HTTP status the API answers."""

from __future__ import annotations


class ServiceError(Exception):
    """The message names the object, value or state at fault."""

    status_code = 400


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409
