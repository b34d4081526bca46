"""The warehouse resource: where the facts go, and how to connect.

``DATABASE_URL`` names an external PostgreSQL; without it the embedded server is used. The URL
may hold a password, so it is configured through an environment variable and never logged.
"""

from __future__ import annotations

import dagster as dg
import psycopg

from ingest_assets.embedded import warehouse_url


class Warehouse(dg.ConfigurableResource):
    """PostgreSQL that holds the facts tables and the load ledger."""

    database_url: str = ""

    def url(self) -> str:
        return self.database_url or warehouse_url()

    def connect(self, autocommit: bool = False) -> psycopg.Connection:
        return psycopg.connect(self.url(), autocommit=autocommit)
