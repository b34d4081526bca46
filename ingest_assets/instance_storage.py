"""Dagster instance storage on PostgreSQL that defaults to the embedded server.

``dagster.yaml`` names this class, so ``dagster dev``, ``dagster asset materialize`` and every
run worker find the same storage without a wrapper script: ``DAGSTER_PG_URL`` when set (an
external server), else the embedded one.
"""

from __future__ import annotations

from typing import Any

from dagster import Field, StringSource
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage

from ingest_assets.embedded import dagster_storage_url


class EmbeddedOrExternalPostgresStorage(DagsterPostgresStorage):
    """dagster-postgres storage whose URL comes from config, ``DAGSTER_PG_URL`` or embedded."""

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
