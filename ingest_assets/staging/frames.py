"""The cleaned-frames IO manager: typed tables written as Parquet row groups, chunk by chunk.

The ``cleaned`` asset returns a ``FrameStream`` per year (a schema and an iterator of Arrow
tables, one per staged page; a run of several years hands one per year, ``staging.years``); this
IO manager writes each chunk as it comes, so a million-row year never sits in memory. The file
appears whole or not at all (``StagingArea.open_atomic``: a rename on a local folder, an upload
committed only on success on object storage). Downstream assets receive ``CleanedFrames``, a
handle that streams record batches back out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq

from ingest_assets.errors import StagingError
from ingest_assets.prefetch import ahead
from ingest_assets.staging.storage import StagingArea
from ingest_assets.staging.years import load_years, output_years, publish_figures


@dataclass
class FrameStream:
    """What ``cleaned`` returns: the schema and the chunks to write, one per staged page."""

    schema: pa.Schema
    chunks: Iterator[pa.Table]


@dataclass(frozen=True)
class CleanedFrames:
    """A handle to one year's cleaned Parquet file."""

    area: StagingArea
    path: str

    def _file(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.area.fs.open(self.path, "rb"))

    @property
    def num_rows(self) -> int:
        return self._file().metadata.num_rows

    @property
    def schema(self) -> pa.Schema:
        """The cleaned columns, with the schema metadata they were written with."""
        return self._file().schema_arrow

    def batches(self, batch_size: int = 65_536) -> Iterator[pa.RecordBatch]:
        yield from self._file().iter_batches(batch_size=batch_size)


def _markdown_preview(table: pa.Table) -> str:
    """The first rows as a Markdown table, straight from Arrow: importing pandas (and tabulate)
    for five rows cost every cleaning step about a second of start-up.
    """

    def cell(value: object) -> str:
        return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(table.column_names) + " |",
        "|" + "---|" * table.num_columns,
    ]
    lines += ["| " + " | ".join(cell(v) for v in row.values()) + " |" for row in table.to_pylist()]
    return "\n".join(lines)


def _table_schema(schema: pa.Schema) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name=f.name, type=str(f.type)) for f in schema])


class ParquetFramesIOManager(dg.ConfigurableIOManager):
    """Writes cleaned frames to ``<base_path>/<asset key>/<year>.parquet``, one year at a time."""

    base_path: str

    def _path(self, area: StagingArea, key: dg.AssetKey, year: str) -> str:
        return area.path(*key.path, f"{year}.parquet")

    def handle_output(self, context: dg.OutputContext, obj: Mapping[str, FrameStream]) -> None:
        area = StagingArea(self.base_path)
        figures = {
            year: self._write_year(area, self._path(area, context.asset_key, year), stream)
            for year, stream in output_years(context, obj).items()
        }
        publish_figures(context, figures)

    def _write_year(self, area: StagingArea, path: str, obj: FrameStream) -> dict[str, Any]:
        started = time.monotonic()
        rows = 0
        preview: str | None = None
        # the next pages are cleaned on a second thread while this one is written
        with (
            area.open_atomic(path) as sink,
            pq.ParquetWriter(sink, obj.schema) as writer,
            closing(ahead(obj.chunks, 2, "clean-ahead")) as chunks,
        ):
            for chunk in chunks:
                if chunk.num_rows == 0:
                    continue
                writer.write_table(chunk.cast(obj.schema))
                rows += chunk.num_rows
                if preview is None:
                    preview = _markdown_preview(chunk.slice(0, 5))
        return {
            "dagster/row_count": dg.MetadataValue.int(rows),
            "dagster/column_schema": _table_schema(obj.schema),
            "bytes": dg.MetadataValue.int(area.fs.size(path)),
            "seconds": dg.MetadataValue.float(round(time.monotonic() - started, 3)),
            "preview": dg.MetadataValue.md(preview or "(no rows)"),
            "path": dg.MetadataValue.path(area.url(path)),
        }

    def load_input(self, context: dg.InputContext) -> dict[str, CleanedFrames]:
        area = StagingArea(self.base_path)

        def cleaned(year: str) -> CleanedFrames:
            path = self._path(area, context.asset_key, year)
            if not area.fs.exists(path):
                raise StagingError(
                    f"no cleaned frame for {'/'.join(context.asset_key.path)} "
                    f"year {year} at {area.url(path)}; materialize cleaned first"
                )
            return CleanedFrames(area, path)

        return load_years(context, cleaned)
