"""Bulk files (``source: files``): a glob of CSV or tab-separated files, optionally gzip-compressed,
on a local disk or any fsspec URL, with a ``year_column`` that decides each row's partition.

Files are streamed in blocks with pyarrow (every value read as a string, an empty one as NULL),
so memory holds one block and one page, never a file. A row's year is the leading four digits of
its ``year_column`` (an integer year, or an ISO date or timestamp); a value without them fails
the plan, naming the file and the value, instead of silently belonging to no year. Headers match
the declared columns after snake-casing (``"Primary Breed"`` → ``primary_breed``). Each file
holding rows of the year is one slice; its rows are staged as CSV pages of at most
``chunk_rows`` rows. A header that is neither declared nor the year column is a schema change:
under ``on_schema_change: fail`` it fails the plan, naming it; under ``add_columns`` it is staged
too (snake-cased) and becomes a text column.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingest_assets.errors import SourceError
from ingest_assets.kinds.base import DatasetConfig, KindResource, Page, Plan, Slice, Source
from ingest_assets.kinds.files.config import FilesDatasetConfig
from ingest_assets.kinds.files.pages import MAX_ROW_BYTES, write_page
from ingest_assets.settings import Settings

_YEAR = r"^\d{4}"
_BOM_AWARE = {"utf-8": "utf-8-sig"}  # a byte order mark is not part of the first header


def snake_case(header: str) -> str:
    """A file header as a column name: lower case, runs of other characters as one '_'."""
    return re.sub(r"[^a-z0-9]+", "_", header.strip().lstrip("\ufeff").lower()).strip("_")


class FilesSource(Source):
    """The files kind: each file holding rows of the year is a slice, streamed in blocks."""

    kind: ClassVar[str] = "files"
    config: FilesDatasetConfig

    def __init__(self, config: FilesDatasetConfig, client: Any = None) -> None:
        super().__init__(config, client)
        self._fs, self._pattern = fsspec.core.url_to_fs(config.path)

    def _paths(self) -> list[str]:
        paths = sorted(self._fs.glob(self._pattern))
        if not paths:
            raise SourceError(f"dataset {self.config.name}: no file matches {self.config.path}")
        return paths

    def _delimiter(self, path: str) -> str:
        if self.config.delimiter:
            return self.config.delimiter
        name = path.removesuffix(".gz")
        return "\t" if name.endswith((".tsv", ".tab")) else ","

    def _headers(self, path: str) -> list[str]:
        encoding = self.config.encoding
        try:
            with self._fs.open(
                path, "rt", compression="infer", encoding=_BOM_AWARE.get(encoding, encoding)
            ) as handle:
                line = handle.readline()
        except UnicodeDecodeError:
            raise SourceError(self._undecodable(path)) from None
        return next(csv.reader([line], delimiter=self._delimiter(path)), [])

    def _undecodable(self, path: str) -> str:
        """Where the file first stops being text in its declared encoding: line, byte, value.

        Only on the error path: the file is scanned again line by line in Python.
        """
        encoding = self.config.encoding
        offset = 0
        with self._fs.open(path, "rb", compression="infer") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    line.decode(encoding)
                except UnicodeDecodeError as exc:
                    bad = line[exc.start : exc.end]
                    return (
                        f"dataset {self.config.name}, file {path}: line {number}, byte "
                        f"{offset + exc.start:,} ({bad!r}) is not valid {encoding} text; "
                        "declare the files' encoding in the catalog (encoding: ...)"
                    )
                offset += len(line)
        return f"dataset {self.config.name}, file {path}: not valid {encoding} text"

    @property
    def evolves(self) -> bool:
        return self.config.on_schema_change == "add_columns"

    def new_fields(self, path: str) -> list[str]:
        """The file's headers (snake-cased) that are neither declared nor the year column."""
        known = {*self.config.columns, snake_case(self.config.year_column)}
        return [name for name in map(snake_case, self._headers(path)) if name not in known]

    def batches(self, path: str, year_only: bool = False) -> Iterator[pa.RecordBatch]:
        """The file's declared columns and year column (and under ``add_columns`` its new
        fields), as string batches of up to 16 MiB; only the year column with ``year_only``
        (counting at plan parses one column, not the row).
        """
        headers = self._headers(path)
        by_name = {snake_case(h): h for h in headers}
        wanted = [*self.config.columns, snake_case(self.config.year_column)]
        missing = [name for name in wanted if name not in by_name]
        if self.evolves:  # a vanished declared column loads as NULL (the year column cannot)
            wanted = [name for name in wanted if name in by_name]
            missing = [name for name in missing if name == snake_case(self.config.year_column)]
        if missing:
            raise SourceError(
                f"dataset {self.config.name}, file {path}: no header for column(s) "
                f"{', '.join(missing)}; headers are {', '.join(headers)}"
            )
        new = self.new_fields(path)
        if new and not self.evolves:
            raise SourceError(
                f"dataset {self.config.name}, file {path}: new field(s) {', '.join(new)} not "
                "in the catalog's columns; declare them, or set on_schema_change: add_columns"
            )
        wanted += new
        names = [f"c{i}" for i in range(len(headers))]
        index = {h: i for i, h in enumerate(headers)}
        if year_only:
            wanted = [snake_case(self.config.year_column)]
        picks = {name: names[index[by_name[name]]] for name in dict.fromkeys(wanted)}
        try:
            with self._fs.open(path, "rb", compression="infer") as handle:
                reader = pacsv.open_csv(
                    handle,
                    read_options=pacsv.ReadOptions(
                        column_names=names,
                        skip_rows=1,
                        block_size=MAX_ROW_BYTES,
                        encoding=self.config.encoding,
                    ),
                    parse_options=pacsv.ParseOptions(
                        delimiter=self._delimiter(path), newlines_in_values=True
                    ),
                    convert_options=pacsv.ConvertOptions(
                        include_columns=list(picks.values()),
                        column_types=dict.fromkeys(picks.values(), pa.string()),
                        strings_can_be_null=True,
                        null_values=[""],
                    ),
                )
                for batch in reader:
                    yield pa.RecordBatch.from_arrays(
                        [batch.column(column) for column in picks.values()], names=list(picks)
                    )
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            if isinstance(exc, UnicodeDecodeError) or "UTF8" in str(exc):
                raise SourceError(self._undecodable(path)) from None
            if "straddl" in str(exc):
                raise SourceError(
                    f"dataset {self.config.name}, file {path}: a row is longer than "
                    f"{MAX_ROW_BYTES >> 20} MiB, the most the files kind reads"
                ) from None
            raise

    def _year_mask(self, batch: pa.RecordBatch, year: int, path: str) -> pa.Array:
        values = batch.column(snake_case(self.config.year_column))
        valid = pc.fill_null(pc.match_substring_regex(values, _YEAR), False)
        if not pc.all(valid).as_py():
            bad = values.filter(pc.invert(valid))[0].as_py()
            raise SourceError(
                f"dataset {self.config.name}, file {path}: year column "
                f"{self.config.year_column!r} holds {bad!r}, which does not start with a year"
            )
        return pc.equal(pc.utf8_slice_codeunits(values, 0, 4), str(year))

    def _count_file(self, path: str, year: int) -> int:
        batches = self.batches(path, year_only=True)
        return sum(pc.sum(self._year_mask(b, year, path)).as_py() or 0 for b in batches)

    # -- the Source interface --------------------------------------------------------------
    def plan(self, year: int) -> Plan:
        slices = []
        for path in self._paths():
            rows = self._count_file(path, year)
            if rows:
                params = {"file": (path,), "year": (str(year),)}
                slices.append(Slice(key=path, params=params, expected_rows=rows))
        total = sum(s.expected_rows for s in slices)
        return Plan(year=year, slices=tuple(slices), source_count=total, year_count=total)

    def count(self, year: int) -> int:
        return self.plan(year).source_count

    def fetch(self, part: Slice) -> Iterator[Page]:
        path = part.params["file"][0]
        year = int(part.params["year"][0])
        limit = self.config.chunk_rows
        present = set(map(snake_case, self._headers(path)))
        columns = [c for c in self.config.columns if c in present] + self.new_fields(path)
        pending: list[pa.Table] = []
        pending_rows = index = 0
        for batch in self.batches(path):
            rows = pa.Table.from_batches([batch]).filter(self._year_mask(batch, year, path))
            pending.append(rows.select(columns))
            pending_rows += rows.num_rows
            while pending_rows >= limit:
                table = pa.concat_tables(pending)
                yield self._page(part, index, table.slice(0, limit))
                index += 1
                pending, pending_rows = [table.slice(limit)], table.num_rows - limit
        if pending_rows:
            yield self._page(part, index, pa.concat_tables(pending))

    @staticmethod
    def _page(part: Slice, index: int, table: pa.Table) -> Page:
        return Page(slice=part, index=index, body=write_page(table), rows=table.num_rows)

    def change_signal(self, years: Sequence[int]) -> dict[int, str]:
        """One fingerprint of the matching files (paths, sizes, modification times)."""
        digest = hashlib.sha256()
        for path in self._paths():
            info = self._fs.info(path)
            stamp = info.get("mtime") or info.get("LastModified") or info.get("updated") or ""
            digest.update(f"{path}|{info.get('size')}|{stamp}\n".encode())
        return dict.fromkeys(years, digest.hexdigest()[:16])

    def describe_query(self, year: int) -> dict[str, Any]:
        return {"path": self.config.path, "year_column": self.config.year_column, "year": year}


class FilesStore(KindResource):
    """The files kind needs no credentials; fsspec URLs carry their own (e.g. from the env)."""

    resource_key: ClassVar[str] = "files_store"

    @classmethod
    def from_settings(cls, config: Settings) -> FilesStore:
        """Nothing to configure: the catalog's fsspec URLs say where the files are."""
        return cls()

    def source(self, config: DatasetConfig) -> FilesSource:
        assert isinstance(config, FilesDatasetConfig)
        return FilesSource(config)
