"""The warehouse resource: where the facts go, and how to connect.

``DATABASE_URL`` names an external PostgreSQL; without it the embedded server is used. The URL
may hold a password, so it is configured through an environment variable and never logged: the
one place it is shown, the unreachable-warehouse error, shows it with the password as ``***``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dagster as dg
import psycopg

from ingest_assets.embedded import warehouse_url
from ingest_assets.errors import WarehouseUnreachable
from ingest_assets.http import Redactor


def redacted_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


class Warehouse(dg.ConfigurableResource):
    """PostgreSQL that holds the facts tables and the load ledger."""

    database_url: str = ""

    def url(self) -> str:
        return self.database_url or warehouse_url()

    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(self.url(), autocommit=autocommit)

    def require_reachable(self, what: str, timeout_seconds: int = 10) -> None:
        """Connect once, before any fetching: a wrong ``DATABASE_URL`` fails first, and clearly."""
        if not self.database_url:
            warehouse_url()  # the embedded server: started (or found) here
            return
        try:
            psycopg.connect(self.database_url, connect_timeout=timeout_seconds).close()
        except psycopg.Error as exc:
            password = urlsplit(self.database_url).password
            reason = Redactor([password])(str(exc).strip().splitlines()[0])
            raise WarehouseUnreachable(
                f"{what}: cannot connect to the warehouse DATABASE_URL="
                f"{redacted_url(self.database_url)} ({reason}); fix DATABASE_URL, or unset it "
                "to use the embedded PostgreSQL"
            ) from None
