"""Dagster instance storage on PostgreSQL that defaults to the embedded server.

``dagster.yaml`` names this class, so ``dagster dev``, ``dagster asset materialize`` and every
run worker find the same storage without a wrapper script: ``DAGSTER_PG_URL`` when set (an
external server), else the embedded one.

Outside the webserver, dagster-postgres opens a new connection for every statement (a
``NullPool``): one small year's run paid about 120 connects, 0.8 s of its 4 s. Every process
here keeps one connection per storage instead, as Dagster's webserver does
(``optimize_for_webserver``); a burst of concurrent statements opens short-lived extra ones.

It also keeps a backfill alive while its code server is down (killed, crashed, restarted by a
deploy). Dagster 1.13's backfill daemon otherwise *fails* an asset backfill (FAILING, then
FAILED: the runs not yet launched never are) at its first tick that finds the code location
unloadable, since the backfill's assets are then missing from the asset graph
(``DagsterAssetBackfillDataLoadError``; dagster-io/dagster#33527). With
``DAGSTER_BACKFILL_RETRY_DEFINITION_CHANGED_ERROR`` set it skips such ticks and resumes once the
location loads again; an asset gone from a location that loads still fails the backfill. That
setting is an environment variable only, read by the daemon, and this class is the project's
code every Dagster process (the daemon too, under ``dagster dev`` and in deploy/) loads from
``dagster.yaml``: so it is set here, unless the environment sets it already.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import Field, StringSource
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

from ingest_assets.embedded import dagster_storage_url

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 10  # concurrent statements beyond the kept connection (daemon threads)
BACKFILL_SURVIVES_UNLOADABLE_CODE = "DAGSTER_BACKFILL_RETRY_DEFINITION_CHANGED_ERROR"


class EmbeddedOrExternalPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres storage whose URL comes from config, ``DAGSTER_PG_URL`` or embedded."""

    def __init__(self, postgres_url: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(postgres_url=postgres_url, inst_data=inst_data)
        os.environ.setdefault(BACKFILL_SURVIVES_UNLOADABLE_CODE, "1")  # see the module docstring
        for storage in (self.run_storage, self.event_log_storage, self.schedule_storage):
            storage.optimize_for_webserver(
                statement_timeout=0, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=MAX_OVERFLOW
            )

    @classmethod
    def config_type(cls) -> dict[str, Any]:
        return {"postgres_url": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(  # type: ignore[override]  # our own config type, not postgres_db's
        cls, inst_data: ConfigurableClassData | None, config_value: dict[str, Any]
    ) -> EmbeddedOrExternalPostgresStorage:
        return cls(
            postgres_url=config_value.get("postgres_url") or dagster_storage_url(),
            inst_data=inst_data,
        )
