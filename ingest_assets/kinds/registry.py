"""The registry of source kinds: the one place a new kind is added, one line per kind.

Each kind brings, from its own folder, its catalog model, its ``Cleaner`` (offline) and the
Dagster resource that holds its connection settings and builds its ``Source`` (network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ingest_assets.kinds.base import Cleaner, DatasetConfig, KindResource, Upstream
from ingest_assets.kinds.files.cleaner import FilesCleaner
from ingest_assets.kinds.files.config import FilesDatasetConfig
from ingest_assets.kinds.files.source import FilesStore
from ingest_assets.kinds.nass.cleaner import NassCleaner
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.source import NassBulkFiles
from ingest_assets.kinds.nass_bulk.upstream import bulk_upstream
from ingest_assets.kinds.socrata.cleaner import SocrataCleaner
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.kinds.socrata.source import SocrataApi


@dataclass(frozen=True)
class SourceKind:
    """What a source kind brings: its catalog model, cleaner and resource."""

    config_model: type[DatasetConfig]
    cleaner: type[Cleaner]
    resource: type[KindResource]
    upstream: Callable[[DatasetConfig], Upstream] | None = None


SOURCE_KINDS: dict[str, SourceKind] = {
    "nass": SourceKind(NassDatasetConfig, NassCleaner, NassApi),
    "socrata": SourceKind(SocrataDatasetConfig, SocrataCleaner, SocrataApi),
    "files": SourceKind(FilesDatasetConfig, FilesCleaner, FilesStore),
    "nass_bulk": SourceKind(NassBulkDatasetConfig, NassCleaner, NassBulkFiles, bulk_upstream),
}
