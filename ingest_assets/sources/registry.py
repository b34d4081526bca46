"""The registry of source kinds: the one place a new kind is added.

Each kind brings its catalog model, its ``Source`` (network), its ``Cleaner`` (offline) and the
Dagster resource that holds its connection settings.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from ingest_assets.cleaning.files import FilesCleaner
from ingest_assets.cleaning.nass import NassCleaner
from ingest_assets.cleaning.socrata import SocrataCleaner
from ingest_assets.sources.base import Cleaner, DatasetConfig, Source
from ingest_assets.sources.files import FilesDatasetConfig, FilesSource, FilesStore
from ingest_assets.sources.nass import NassApi, NassDatasetConfig, NassSource
from ingest_assets.sources.socrata import SocrataApi, SocrataDatasetConfig, SocrataSource


@dataclass(frozen=True)
class SourceKind:
    config_model: type[DatasetConfig]
    source: type[Source]
    cleaner: type[Cleaner]
    resource: type[dg.ConfigurableResource]


SOURCE_KINDS: dict[str, SourceKind] = {
    "nass": SourceKind(NassDatasetConfig, NassSource, NassCleaner, NassApi),
    "socrata": SourceKind(SocrataDatasetConfig, SocrataSource, SocrataCleaner, SocrataApi),
    "files": SourceKind(FilesDatasetConfig, FilesSource, FilesCleaner, FilesStore),
}
