"""Where a secret could be left behind, read as text: the secrets scans search these.

Dagster's PostgreSQL storage (every table: event log, runs, ...), folders (an instance's compute
logs, a staging folder) and, in ``leaks``, which secrets appear in which trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import psycopg
from psycopg import sql


def dagster_storage_text(dagster_pg_url: str, must_contain: str) -> str:
    """Every row of every table of Dagster's storage as text; ``must_contain`` (a dataset's
    name) proves the search reached the runs' events.
    """
    url = "postgresql://" + dagster_pg_url.split("://", 1)[1]
    texts = []
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            query = sql.SQL("SELECT t::text FROM {}.{} AS t").format(
                sql.Identifier(schema), sql.Identifier(table)
            )
            texts += [row for (row,) in conn.execute(query)]
    assert any(must_contain in t for t in texts), f"no {must_contain!r} in Dagster's storage"
    return "\n".join(texts)


def files_text(folder: Path) -> str:
    """Every file under ``folder``, bytes read as latin-1 (so binary files are searched too)."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files, f"nothing to search under {folder}"
    return "\n".join(p.read_bytes().decode("latin-1") for p in files)


def blobs_text(blobs: Iterable[bytes]) -> str:
    """Staged objects' contents as one searchable text."""
    text = "\n".join(blob.decode("latin-1") for blob in blobs)
    assert text, "no staged objects to search"
    return text


def leaks(traces: Mapping[str, str], secrets: Iterable[str]) -> set[tuple[str, str]]:
    """(trace, secret) for every secret found in a trace; empty when nothing leaked."""
    wanted = tuple(secrets)
    return {
        (where, secret) for where, text in traces.items() for secret in wanted if secret in text
    }
