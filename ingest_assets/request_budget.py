"""The request budget of each API host, shared by every process of the deployment.

Why here and in PostgreSQL: runs, sensors and Celery workers are separate processes (often on
separate machines) and Dagster pools only cap concurrent *steps*, so a per-process pace lets N
processes send N times the rate an API tolerates. The warehouse database is the one service all
of them already reach, so each host's budget is a row in ``ingest_meta.request_budget``, taken
under ``SELECT ... FOR UPDATE`` in one short transaction per request:

* **Rate** — a GCRA (a leaky bucket kept as one timestamp, ``next_at``): a request is granted at
  ``max(now, next_at - (burst - 1) * interval)`` and moves ``next_at`` on by one interval
  (``per_seconds / requests``). The granting process sleeps until its grant; nobody polls.
* **Concurrency** — a lease row per request in flight. A lease is live while its holder's
  database session lives and for at most ``lease_seconds``, so a killed process frees its slot
  as soon as PostgreSQL notices the closed connection, and a hung one after ``lease_seconds``.
* **429** — the host's rate share drops at once for every process (multiplied by ``slowdown``)
  and no request is granted before ``Retry-After`` has passed (at least one slowed interval);
  each later success wins back ``recovery`` of the rate (AIMD), up to the configured rate.

Hosts are configured in the catalog's ``budgets:`` section (``docs/catalog.md``), merged over
``DEFAULT_BUDGETS``. Loopback hosts (the stand-ins) are unmetered unless configured explicitly.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import psycopg
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from ingest_assets.errors import CatalogError
from ingest_assets.warehouse.tables import one_row, scalar

DEFAULT_HOST = "default"
"""The budget key that applies to every non-loopback host without one of its own."""

CONCURRENCY_POLL_SECONDS = 0.05
"""How often a request waiting for a free concurrency slot asks again."""

_DDL = """
CREATE TABLE IF NOT EXISTS ingest_meta.request_budget (
    host text PRIMARY KEY,
    next_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    rate_share double precision NOT NULL DEFAULT 1.0,
    blocked_until timestamptz,
    throttles bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS ingest_meta.request_leases (
    id bigserial PRIMARY KEY,
    host text NOT NULL,
    holder_pid integer NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS request_leases_host ON ingest_meta.request_leases (host);
"""


class HostBudget(BaseModel):
    """What one API host is allowed from the whole deployment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: int = Field(gt=0, description="Requests allowed per `per_seconds`, all processes.")
    per_seconds: float = Field(gt=0, description="The interval `requests` is counted over.")
    burst: int = Field(
        1, ge=1, description="Requests that may go back to back before spacing applies."
    )
    concurrency: int = Field(ge=1, description="Requests in flight at once, all processes.")
    lease_seconds: float = Field(
        600.0, gt=0, description="Longest a concurrency slot is held by a process that hangs."
    )
    slowdown: float = Field(
        0.5, gt=0, lt=1, description="The rate share is multiplied by this after each 429."
    )
    min_share: float = Field(0.05, gt=0, le=1, description="The rate share never drops below.")
    recovery: float = Field(
        0.05, gt=0, le=1, description="Rate share regained per successful request after a 429."
    )

    @property
    def interval(self) -> float:
        """Seconds between requests at the full rate."""
        return self.per_seconds / self.requests


DEFAULT_BUDGETS: dict[str, HostBudget] = {
    # NASS: "more than 100 calls per 5 minutes" is too many (reference §1.8); requests are big.
    "quickstats.nass.usda.gov": HostBudget(requests=100, per_seconds=300, burst=3, concurrency=2),
    # Socrata portals: the app-token guideline is ~1,000 requests per rolling hour.
    DEFAULT_HOST: HostBudget(requests=1000, per_seconds=3600, burst=10, concurrency=4),
}

_BUDGETS = TypeAdapter(dict[str, HostBudget])


def parse_budgets(section: Any, origin: str = "catalog") -> dict[str, HostBudget]:
    """The catalog's ``budgets:`` section merged over ``DEFAULT_BUDGETS`` (keys: host or
    host:port, lower case, or ``default``).
    """
    if section is None:
        return dict(DEFAULT_BUDGETS)
    try:
        configured = _BUDGETS.validate_python(section)
    except ValidationError as exc:
        problems = [
            f"budgets.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        ]
        raise CatalogError(f"{origin}: invalid budgets:\n  " + "\n  ".join(problems)) from None
    return {**DEFAULT_BUDGETS, **{host.lower(): budget for host, budget in configured.items()}}


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_key(url: str) -> str:
    """What a URL's budget is kept under: its host and port as written, lower case."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


class Slot:
    """One granted request; the caller marks it ``throttled`` when the answer was a 429."""

    def __init__(self) -> None:
        self.retry_after: float | None = None
        self.throttled = False

    def throttle(self, retry_after: float | None) -> None:
        self.throttled = True
        self.retry_after = retry_after


class RequestBudget:
    """Grants requests per host from the shared rows in ``database_url``'s ``ingest_meta``."""

    def __init__(self, database_url: str, budgets: Mapping[str, HostBudget]) -> None:
        self._url = database_url
        self._budgets = dict(budgets)
        self._local = threading.local()
        self._ready: set[str] = set()
        self.waited_seconds = 0.0

    def budget_for(self, url: str) -> tuple[str, HostBudget] | None:
        """The host key and budget a request to ``url`` spends, or None when unmetered."""
        key = host_key(url)
        host = urlsplit(url).hostname or ""
        for candidate in (key, host):
            if candidate in self._budgets:
                return candidate, self._budgets[candidate]
        if _is_loopback(host) or DEFAULT_HOST not in self._budgets:
            return None
        return key, self._budgets[DEFAULT_HOST]

    def _connection(self) -> psycopg.Connection:
        """One session per thread and process: the session is what keeps its leases live."""
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed or self._local.pid != os.getpid():
            conn = psycopg.connect(self._url, autocommit=True)
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _ensure(self, conn: psycopg.Connection, host: str) -> None:
        if host in self._ready:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('ingest_meta.ddl'))")
            if scalar(conn, "SELECT to_regnamespace('ingest_meta')") is None:
                conn.execute("CREATE SCHEMA IF NOT EXISTS ingest_meta")
            conn.execute(_DDL)
            conn.execute(
                "INSERT INTO ingest_meta.request_budget (host) VALUES (%s) ON CONFLICT DO NOTHING",
                (host,),
            )
        self._ready.add(host)

    def _try_grant(
        self, conn: psycopg.Connection, host: str, budget: HostBudget
    ) -> tuple[int, float] | None:
        """Reserve a slot: (lease id, seconds until the grant), or None when all are taken."""
        with conn.transaction():
            next_at, share, blocked, now = one_row(
                conn,
                "SELECT next_at, rate_share, blocked_until, clock_timestamp() "
                "FROM ingest_meta.request_budget WHERE host = %s FOR UPDATE",
                (host,),
            )
            conn.execute(
                "DELETE FROM ingest_meta.request_leases WHERE host = %s AND (expires_at < %s "
                "OR holder_pid NOT IN (SELECT pid FROM pg_stat_activity))",
                (host, now),
            )
            live = scalar(
                conn, "SELECT count(*) FROM ingest_meta.request_leases WHERE host = %s", (host,)
            )
            if live >= budget.concurrency:
                return None
            interval = budget.interval / share
            theoretical = max(next_at.timestamp(), now.timestamp())
            grant = max(now.timestamp(), theoretical - (budget.burst - 1) * interval)
            if blocked is not None:
                grant = max(grant, blocked.timestamp())
            conn.execute(
                "UPDATE ingest_meta.request_budget SET next_at = to_timestamp(%s) WHERE host = %s",
                (max(theoretical, grant) + interval, host),
            )
            lease_id = scalar(
                conn,
                "INSERT INTO ingest_meta.request_leases (host, holder_pid, expires_at) "
                "VALUES (%s, pg_backend_pid(), to_timestamp(%s)) RETURNING id",
                (host, grant + budget.lease_seconds),
            )
            return int(lease_id), grant - now.timestamp()

    def _release(
        self, conn: psycopg.Connection, host: str, budget: HostBudget, lease: int, slot: Slot
    ) -> None:
        with conn.transaction():
            conn.execute("DELETE FROM ingest_meta.request_leases WHERE id = %s", (lease,))
            if slot.throttled:
                # Block for Retry-After, and at least one interval at the lowered rate.
                conn.execute(
                    "UPDATE ingest_meta.request_budget SET "
                    "rate_share = greatest(%(floor)s, rate_share * %(slowdown)s), "
                    "blocked_until = greatest(blocked_until, clock_timestamp() + make_interval("
                    "secs => greatest(%(hint)s, %(interval)s / greatest(%(floor)s, "
                    "rate_share * %(slowdown)s)))), throttles = throttles + 1 "
                    "WHERE host = %(host)s",
                    {
                        "floor": budget.min_share,
                        "slowdown": budget.slowdown,
                        "hint": slot.retry_after or 0.0,
                        "interval": budget.interval,
                        "host": host,
                    },
                )
            else:
                conn.execute(
                    "UPDATE ingest_meta.request_budget SET rate_share = least(1.0, "
                    "rate_share + %s) WHERE host = %s AND rate_share < 1.0",
                    (budget.recovery, host),
                )

    @contextlib.contextmanager
    def request(self, url: str) -> Iterator[Slot]:
        """Wait for ``url``'s host to grant a request, hold the slot while the block runs."""
        slot = Slot()
        metered = self.budget_for(url)
        if metered is None:
            yield slot
            return
        host, budget = metered
        conn = self._connection()
        self._ensure(conn, host)
        started = time.monotonic()
        while (granted := self._try_grant(conn, host, budget)) is None:
            time.sleep(CONCURRENCY_POLL_SECONDS)
        lease, wait = granted
        if wait > 0:
            time.sleep(wait)
        self.waited_seconds += time.monotonic() - started
        try:
            yield slot
        finally:
            self._release(conn, host, budget, lease, slot)

    def state(self, url: str) -> dict[str, Any] | None:
        """The host's shared row (rate share, throttles, leases in flight), for metadata/tests."""
        metered = self.budget_for(url)
        if metered is None:
            return None
        host, _ = metered
        conn = self._connection()
        self._ensure(conn, host)
        row = one_row(
            conn,
            "SELECT rate_share, throttles, (SELECT count(*) FROM ingest_meta.request_leases l "
            "WHERE l.host = b.host) FROM ingest_meta.request_budget b WHERE host = %s",
            (host,),
        )
        return {"host": host, "rate_share": row[0], "throttles": row[1], "in_flight": row[2]}


@functools.cache
def _shared(database_url: str, catalog: str) -> RequestBudget:
    from ingest_assets.catalog import load_budgets

    return RequestBudget(database_url, load_budgets(catalog))


def shared_budget() -> RequestBudget:
    """This process's budget: the warehouse database and the catalog's ``budgets:`` section."""
    from ingest_assets.catalog import catalog_path
    from ingest_assets.embedded import warehouse_url

    return _shared(warehouse_url(), str(catalog_path()))
