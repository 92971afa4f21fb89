"""One database connection that runs work in transactions and reconnects on demand."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

T = TypeVar("T")


class Session:
    """A connection opened at first use and after a failure (``close``)."""

    def __init__(self, url: str, application_name: str, setup: bytes | None = None, **options: Any) -> None:
        self._url = url
        self._application_name = application_name
        self._setup = setup  # run once per connection (temporary tables)
        self._options = options
        self._conn: psycopg.Connection | None = None

    @property
    def open(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def connect(self) -> psycopg.Connection:
        self.close()
        conn = psycopg.connect(self._url, autocommit=False, application_name=self._application_name,
                               **self._options)
        if self._setup is not None:
            conn.execute(self._setup)
            conn.commit()
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    def transact(self, work: Callable[[psycopg.Cursor[Any]], T]) -> T:
        """Run ``work`` in one transaction and commit; roll back and re-raise on failure."""
        conn = self._conn if self.open else self.connect()
        assert conn is not None
        try:
            with conn.cursor() as cur:
                result = work(cur)
            conn.commit()
        except BaseException:
            if not conn.closed:
                conn.rollback()
            raise
        return result
