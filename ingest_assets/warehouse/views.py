"""Materialized views the catalog lists for a table, refreshed after each committed load.

Kept out of the load transaction: the year swap commits first (readers get the new rows in the
table at once), then each view is refreshed in its own transaction, so a broken view never rolls
back a good load, and its error names the view and the dataset.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from ingest_assets.errors import ViewRefreshError


def refresh_views(
    conn: psycopg.Connection, schema: str, views: Sequence[str], what: str
) -> list[str]:
    """``REFRESH MATERIALIZED VIEW`` each of ``views`` in ``schema``; returns the names done."""
    done = []
    for view in views:
        name = f"{schema}.{view}"
        try:
            with conn.transaction():
                conn.execute(
                    sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(schema, view))
                )
        except psycopg.Error as exc:
            raise ViewRefreshError(
                f"{what}: loaded and committed, but refreshing materialized view {name} "
                f"failed: {exc}".strip()
            ) from None
        done.append(name)
    return done
