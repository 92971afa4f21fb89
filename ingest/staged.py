"""Many rows into one statement: binary COPY into a temporary table that the
statement then consumes (``DELETE ... RETURNING``), so that rows staged twice in
one transaction are never read twice. For tens of thousands of rows about
twice as fast as ``unnest()`` of array parameters, whose dumping is per element.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Staging:
    """A temporary table (one per connection, created on first use, emptied at commit)."""

    table: str
    columns: tuple[tuple[str, str], ...]  # (name, PostgreSQL type)

    def take(self) -> str:
        """SQL for a CTE that empties the table and yields its rows: ``WITH staged AS (...)``."""
        return f"DELETE FROM {self.table} RETURNING *"

    def put(self, cur: psycopg.Cursor[Any], rows: Iterable[tuple[Any, ...]]) -> None:
        """Add ``rows`` (in column order) to the table."""
        columns = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind))
                                     for name, kind in self.columns)
        cur.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
            sql.Identifier(self.table), columns))
        with cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(self.table))) as copy:
            copy.set_types([kind for _name, kind in self.columns])
            for row in rows:
                copy.write_row(row)
