"""What one dataset's assets share, derived once from its catalog entry.

The three assets, the job, the sensor and the schedule of a dataset all need the same few facts:
its partitions, its asset keys, its source kind and resource, its warehouse table, and the
asset arguments every stage repeats (group, owners, tags, backfill policy). ``DatasetSpec``
computes them once so each builder stays a small function of the spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import dagster as dg

from ingest_assets.automation.policies import backfill_policy
from ingest_assets.kinds.base import DatasetConfig, Source
from ingest_assets.kinds.registry import SOURCE_KINDS, SourceKind
from ingest_assets.partitions import yearly_partitions
from ingest_assets.schema_changes import evolving
from ingest_assets.warehouse.tables import FactsTable

FULL_RELOAD_TAG = "ingest/full_reload"


def api_pool(config: DatasetConfig) -> str:
    """One Dagster pool per API host, so concurrent runs share the host's request budget."""
    url = getattr(config, "base_url", None) or getattr(config, "domain", None) or config.source
    host = urlparse(url if "//" in url else f"//{url}").hostname or config.source
    return "api_" + "".join(ch if ch.isalnum() else "_" for ch in host)


@dataclass(frozen=True)
class DatasetSpec:
    """One catalog entry with everything its definitions are built from."""

    config: DatasetConfig
    kind: SourceKind
    partitions: dg.TimeWindowPartitionsDefinition
    target: FactsTable

    @classmethod
    def of(cls, config: DatasetConfig) -> DatasetSpec:
        kind = SOURCE_KINDS[config.source]
        key = tuple(getattr(config, "key", ()))
        columns = kind.cleaner(config).columns()
        target = FactsTable(config.db_schema, config.table, columns, key, evolving(config))
        return cls(config, kind, yearly_partitions(config), target)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def resource_key(self) -> str:
        """The key of the source kind's resource (``nass_api``, ``socrata_api``, ...)."""
        return self.kind.resource.resource_key

    @property
    def incremental(self) -> bool:
        return self.config.mode == "incremental"

    @property
    def about(self) -> str:
        return self.config.description or f"{self.config.source} dataset {self.name}"

    def key(self, step: str) -> dg.AssetKey:
        """``<dataset>/<step>`` for ``raw_pages``, ``cleaned`` and ``facts``."""
        return dg.AssetKey([self.name, step])

    def asset_arguments(self) -> dict[str, Any]:
        """The ``@dg.asset`` arguments all three stages share."""
        return {
            "partitions_def": self.partitions,
            "group_name": self.name,
            "owners": self.config.owners or None,
            "backfill_policy": backfill_policy(self.config),
            "tags": {"source": self.config.source, "dataset": self.name},  # filterable in the UI
        }

    def source(self, context: dg.AssetExecutionContext) -> Source:
        return getattr(context.resources, self.resource_key).source(self.config)

    def run_mode(self, context: dg.AssetExecutionContext) -> str:
        """The catalog's mode, unless the run asks for a full reload."""
        return "full" if context.run.tags.get(FULL_RELOAD_TAG) == "true" else self.config.mode


def run_years(context: dg.AssetExecutionContext) -> str:
    """The run's years as its messages name them: ``year 2020`` or ``years 2011-2020``."""
    years = context.partition_keys
    return f"year {years[0]}" if len(years) == 1 else f"years {years[0]}-{years[-1]}"
