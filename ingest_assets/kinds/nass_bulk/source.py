"""The ``Source`` over a split bulk file, and the ``NassBulkFiles`` resource.

A year's plan is one slice, the year's part, promising the count the pass recorded for it; the
pages are that part's Arrow blocks regrouped into pages of ``page_rows`` rows (Arrow IPC, the
API's field names, every field text), so the NASS cleaner types them as it types the columns of
an API page, and nothing is parsed twice. The change signal of a year is its count and
checksum in the current split: no request at all, and a new daily file whose rows for a year
are the same leaves that year's signal unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import requests

from ingest_assets.kinds.base import DatasetConfig, KindResource, Page, Plan, Slice, Source
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.remote import Download, RemoteFile, current_file
from ingest_assets.kinds.nass_bulk.split import arrow_pages, part_name
from ingest_assets.kinds.nass_bulk.store import SplitStore
from ingest_assets.settings import Settings

DEFAULT_LISTING_URL = "https://www.nass.usda.gov/datasets/"


class NassBulkSource(Source):
    """A year of a bulk file: its part of the current split, re-read as Quick Stats pages."""

    kind: ClassVar[str] = "nass_bulk"
    config: NassBulkDatasetConfig

    def __init__(self, config: NassBulkDatasetConfig, files: NassBulkFiles) -> None:
        super().__init__(config, files)
        self.store = SplitStore(files.work_dir, config)

    def _year(self, year: int) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
        folder, manifest = self.store.require_current()
        return folder, manifest, manifest["years"].get(str(year))

    def plan(self, year: int) -> Plan:
        _, manifest, part = self._year(year)
        rows = part["rows"] if part else 0
        params = {"file": (manifest["file"],), "etag": (manifest["etag"],), "year": (str(year),)}
        slices = (Slice(key=manifest["file"], params=params, expected_rows=rows),) if rows else ()
        note = f"bulk file {manifest['file']} (ETag {manifest['etag']}): {rows:,} rows kept"
        version = f"{manifest['file']}@{manifest['etag']}"
        return Plan(year, slices, rows, (note,), year_count=rows, source_version=version)

    def count(self, year: int) -> int:
        _, _, part = self._year(year)
        return part["rows"] if part else 0

    def fetch(self, part: Slice) -> Iterator[Page]:
        folder, _, _ = self._year(int(part.params["year"][0]))
        path = folder / part_name(int(part.params["year"][0]))
        for index, (body, rows) in enumerate(arrow_pages(path, self.config.page_rows)):
            yield Page(slice=part, index=index, body=body, rows=rows)

    def change_signal(self, years: Sequence[int]) -> dict[int, str]:
        """Per year: its kept rows and their checksum in the current split ("unsplit" before
        the first pass, so a sensor turned on early records that and waits).
        """
        if self.store.current() is None:
            return dict.fromkeys(years, "unsplit")
        signals = {}
        for year in years:
            _, _, part = self._year(year)
            signals[year] = f"rows={part['rows']};sha256={part['sha256']}" if part else "rows=0"
        return signals

    def describe_query(self, year: int) -> dict[str, Any]:
        _, manifest, _ = self._year(year)
        return {"file": manifest["file"], "etag": manifest["etag"], "query": self.config.query}


class NassBulkFiles(KindResource):
    """Where the bulk files are listed and where their splits are kept (a local folder).

    ``listing_url`` defaults to NASS's ``datasets/`` page (``NASS_BULK_URL`` points at the
    stand-in); ``work_dir`` defaults to ``<INGEST_STAGING>/bulk`` (``NASS_BULK_DIR``), or
    ``$INGEST_HOME/bulk`` when staging is an object store.
    """

    resource_key: ClassVar[str] = "nass_bulk_files"

    listing_url: str = DEFAULT_LISTING_URL
    work_dir: str
    timeout_seconds: float = 60.0
    max_resumes: int = 5

    @classmethod
    def from_settings(cls, config: Settings) -> NassBulkFiles:
        """``NASS_BULK_URL`` / ``NASS_BULK_DIR`` when set, else NASS's page and the staging
        (``$INGEST_HOME/bulk`` when staging is an object store: the splits need a local disk).
        """
        from ingest_assets.embedded import ingest_home
        from ingest_assets.resources import staging_base  # the resources import the kinds

        base = staging_base(config).rstrip("/")
        default = f"{base}/bulk" if "://" not in base else str(ingest_home() / "bulk")
        work_dir = config.nass_bulk_dir or default
        return cls(listing_url=config.nass_bulk_url or DEFAULT_LISTING_URL, work_dir=work_dir)

    def remote(self, config: NassBulkDatasetConfig) -> RemoteFile:
        """The file currently published for the dataset (listing page, then HEAD)."""
        with requests.Session() as session:
            return current_file(session, self.listing_url, config.file, self.timeout_seconds)

    def download(self, remote: RemoteFile, path: Path) -> Download:
        return Download(requests.Session(), remote, path, self.timeout_seconds, self.max_resumes)

    def source(self, config: DatasetConfig) -> NassBulkSource:
        assert isinstance(config, NassBulkDatasetConfig)
        return NassBulkSource(config, self)
