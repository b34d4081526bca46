"""The raw-pages IO manager: API responses staged as compressed files with a slice manifest.

The ``raw_pages`` asset returns a ``PageStream`` — the year's plan and a way to fetch a slice —
and this IO manager pulls it one slice at a time, so memory holds one response, not a year. Each
page is written exactly as received (zstd-compressed, atomically, with a checksum); a partial
manifest is kept after every slice so that a re-run after a failure fetches only the slices that
are missing or corrupt, and says how many it reused. Downstream assets receive ``StagedPages``, a
handle that reads the pages back and verifies each against the manifest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa

from ingest_assets.errors import StagingError
from ingest_assets.kinds.base import Page, Plan, Slice
from ingest_assets.prefetch import ahead
from ingest_assets.staging.storage import StagingArea
from ingest_assets.staging.years import load_years, output_years, publish_figures

MANIFEST = "manifest.json"
PARTIAL = "manifest.partial.json"
_CODEC = pa.Codec("zstd", compression_level=1)


@dataclass
class PageStream:
    """What ``raw_pages`` returns: the plan of a year and the function that fetches a slice."""

    label: str
    plan: Plan
    fetch: Callable[[Slice], Iterator[Page]]
    suffix: str
    query: dict[str, Any]


@dataclass(frozen=True)
class StagedPages:
    """A handle to one staged year: its manifest and verified access to its pages."""

    area: StagingArea
    folder: str
    manifest: dict[str, Any]

    @property
    def source_count(self) -> int:
        return int(self.manifest["source_count"])

    @property
    def year_count(self) -> int:
        """The source's count for the whole year (differs from ``source_count`` when the
        plan fetched only changed rows).
        """
        return int(self.manifest.get("year_count", self.manifest["source_count"]))

    @property
    def staged_rows(self) -> int:
        return sum(s["received_rows"] for s in self.manifest["slices"])

    @property
    def year(self) -> int:
        return int(self.manifest["year"])

    def bodies(self) -> Iterator[tuple[dict[str, Any], bytes]]:
        """Yield (slice entry, decompressed body) for every page, verifying each checksum."""
        for entry in self.manifest["slices"]:
            for page in entry["pages"]:
                path = f"{self.folder}/{page['file']}"
                data = self.area.read_verified(path, page["sha256"])
                yield entry, _CODEC.decompress(data, page["raw_bytes"], asbytes=True)


def _slice_entry(part: Slice) -> dict[str, Any]:
    return {
        "key": part.key,
        "params": {k: list(v) for k, v in part.params.items()},
        "expected_rows": part.expected_rows,
    }


def _file_stem(part: Slice) -> str:
    return hashlib.sha1(part.key.encode()).hexdigest()[:12]


def slice_table(manifest: dict[str, Any], limit: int = 200) -> str:
    """The slice plan as a Markdown table for the UI."""
    lines = ["| slice | filters | promised | received |", "|---|---|---:|---:|"]
    for entry in manifest["slices"][:limit]:
        filters = ", ".join(f"{k}={'|'.join(v)}" for k, v in entry["params"].items())
        lines.append(
            f"| {entry['key']} | {filters} | {entry['expected_rows']:,} | "
            f"{entry['received_rows']:,} |"
        )
    if len(manifest["slices"]) > limit:
        lines.append(f"| … {len(manifest['slices']) - limit} more | | | |")
    return "\n".join(lines)


def _arrivals(
    plan: Plan, reusable: dict[str, dict], fetch: Callable[[Slice], Iterator[Page]]
) -> Iterator[tuple[int, dict | None, Page | None]]:
    """(slice number, reusable entry, page) for every slice in order: a slice a failed attempt
    staged intact comes once with its entry; any other once per page as fetched, then once
    with neither, saying the slice is complete (so it is recorded before a later one fails).
    """
    for number, part in enumerate(plan.slices, start=1):
        previous = reusable.get(part.key)
        if previous and _same_request(previous, part):
            yield number, previous, None
            continue
        for page in fetch(part):
            yield number, None, page
        yield number, None, None


def _same_request(entry: dict[str, Any], part: Slice) -> bool:
    ignored = {"pages": None, "received_rows": None}
    return {**entry, **ignored} == {**_slice_entry(part), **ignored}


def _stage_page(
    area: StagingArea, folder: str, part: Slice, page: Page, suffix: str
) -> dict[str, Any]:
    """Write one page compressed, atomically; its manifest entry."""
    data = _CODEC.compress(page.body, asbytes=True)
    name = f"{_file_stem(part)}-{page.index:04d}{suffix}.zst"
    return {
        "file": name,
        "rows": page.rows,
        "raw_bytes": len(page.body),
        "stored_bytes": len(data),
        "sha256": area.write_bytes(f"{folder}/{name}", data),
    }


class StagedPagesIOManager(dg.ConfigurableIOManager):
    """Stages raw pages under ``<base_path>/<asset key>/<year>/``, one year at a time."""

    base_path: str

    def _folder(self, area: StagingArea, key: dg.AssetKey, year: str) -> str:
        return area.path(*key.path, year)

    def _reusable(self, area: StagingArea, folder: str, partial: dict | None) -> dict[str, dict]:
        """Slices a failed attempt already staged in full and intact."""
        if not partial:
            return {}
        reusable = {}
        for entry in partial.get("slices", []):
            if entry["received_rows"] != entry["expected_rows"]:
                continue
            if all(area.is_intact(f"{folder}/{p['file']}", p["sha256"]) for p in entry["pages"]):
                reusable[entry["key"]] = entry
        return reusable

    def handle_output(self, context: dg.OutputContext, obj: Mapping[str, PageStream]) -> None:
        area = StagingArea(self.base_path)
        figures = {
            year: self._stage_year(context, area, self._folder(area, context.asset_key, year), obj)
            for year, obj in output_years(context, obj).items()
        }
        publish_figures(context, figures)

    def _stage_year(
        self, context: dg.OutputContext, area: StagingArea, folder: str, obj: PageStream
    ) -> dict[str, Any]:
        plan = obj.plan
        reusable = self._reusable(area, folder, area.read_json(f"{folder}/{PARTIAL}"))
        manifest: dict[str, Any] = {
            "dataset": obj.label,
            "year": plan.year,
            "source_count": plan.source_count,
            "year_count": plan.source_count if plan.year_count is None else plan.year_count,
            "notes": list(plan.notes),
            "source_version": plan.source_version,
            "query": obj.query,
            "slices": [],
        }
        started = time.monotonic()
        rows = stored = reused = 0
        total = len(plan.slices)
        # the next page is fetched (received, counted) on a second thread while this one is
        # compressed and written
        arrivals = closing(ahead(_arrivals(plan, reusable, obj.fetch), 1, "fetch-ahead"))
        entry: dict[str, Any] | None = None
        with arrivals as stream:
            for number, previous, page in stream:
                part = plan.slices[number - 1]
                if entry is None:
                    entry = {**_slice_entry(part), "pages": [], "received_rows": 0}
                if page is not None:
                    entry["pages"].append(_stage_page(area, folder, part, page, obj.suffix))
                    entry["received_rows"] += page.rows
                    continue
                if previous is not None:
                    entry = previous
                    reused += 1
                manifest["slices"].append(entry)
                rows += entry["received_rows"]
                stored += sum(p["stored_bytes"] for p in entry["pages"])
                area.write_json(f"{folder}/{PARTIAL}", manifest)
                elapsed = time.monotonic() - started
                rate = rows / elapsed if elapsed > 0 else 0.0
                remaining = plan.source_count - rows
                eta = f"{remaining / rate:.0f}s" if rate > 0 and remaining > 0 else "0s"
                context.log.info(
                    f"{obj.label} {plan.year}: slice {number}/{total} ({part.describe()}) "
                    f"{entry['received_rows']:,} rows; {rows:,}/{plan.source_count:,} so far, "
                    f"{rate:,.0f} rows/s, about {eta} left"
                )
                entry = None
        seconds = time.monotonic() - started
        manifest.update(
            {"reused_slices": reused, "fetched_slices": total - reused, "seconds": seconds}
        )
        area.write_json(f"{folder}/{MANIFEST}", manifest)
        keep = {MANIFEST} | {p["file"] for s in manifest["slices"] for p in s["pages"]}
        area.remove_except(folder, keep)
        if reused:
            context.log.info(f"{obj.label} {plan.year}: reused {reused} of {total} staged slices")
        return {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "source_count": dg.MetadataValue.int(plan.source_count),
            "slices": dg.MetadataValue.int(total),
            "slices_reused": dg.MetadataValue.int(reused),
            "slice_plan": dg.MetadataValue.md(slice_table(manifest)),
            "bytes_staged": dg.MetadataValue.int(stored),
            "seconds": dg.MetadataValue.float(round(seconds, 3)),
            "source_query": dg.MetadataValue.json(obj.query),
            "path": dg.MetadataValue.path(area.url(folder)),
        }

    def load_input(self, context: dg.InputContext) -> dict[str, StagedPages]:
        area = StagingArea(self.base_path)

        def staged(year: str) -> StagedPages:
            folder = self._folder(area, context.asset_key, year)
            manifest = area.read_json(f"{folder}/{MANIFEST}")
            if manifest is None:
                raise StagingError(
                    f"no staged pages for {'/'.join(context.asset_key.path)} "
                    f"year {year} at {area.url(folder)}; materialize raw_pages first"
                )
            return StagedPages(area, folder, manifest)

        return load_years(context, staged)
