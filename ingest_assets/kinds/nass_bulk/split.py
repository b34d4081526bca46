"""The one pass over a bulk file: download, decompress, filter and write each year's part.

The HTTP body is read through ``gzip`` into pyarrow's streaming CSV reader in 1 MiB blocks, so
memory holds one block whatever the file's size; ``gzip`` checks the CRC and length at the end,
so a truncated or corrupt file fails the pass. (The block size is what bounds memory: the CSV
reader's parse buffers live outside Arrow's pool, and with 8 MiB blocks a pass held ~400 MB
more than its Arrow allocations and grew with the file; with 1 MiB it is flat and no slower.)
Rows the query keeps are written, per year, as an Arrow IPC stream of the blocks the reader
decoded (the API's field names, every field text; zstd-compressed buffers): the file is decoded
once, and nothing downstream parses text again. The years' counts and checksums go to
``split.json``, written last, so a pass that fails leaves no split behind.

Disk use: the compressed file (kept, so a retry or a changed query re-splits without a
download) plus the kept rows as Arrow with zstd buffers: ~85 bytes a row for the 39 fields,
about 7x their share of the gzip file (docs/performance.md).
"""

from __future__ import annotations

import gzip
import hashlib
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingest_assets.errors import SourceError
from ingest_assets.kinds.nass.fields import FIELDS
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.filters import RowFilter
from ingest_assets.kinds.nass_bulk.layout import HEADER_TO_FIELD, HEADERS
from ingest_assets.kinds.nass_bulk.remote import Download, RemoteFile

BLOCK_BYTES = 1 << 20
PART_SUFFIX = ".arrow"
SPLIT_MANIFEST = "split.json"
# level 1: writing a part costs a fraction of gzip's CPU
_PART_OPTIONS = pa.ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=1))
_PARSE = pacsv.ParseOptions(delimiter="\t", quote_char=False)
_CONVERT = pacsv.ConvertOptions(
    column_types=dict.fromkeys(HEADERS, pa.string()), strings_can_be_null=False
)


def part_name(year: int) -> str:
    """The file name of a year's part in a split, shared by the writer and the readers."""
    return f"year={year}{PART_SUFFIX}"


@dataclass
class YearPart:
    """One year's part while it is written: its file, writer and count."""

    path: Path
    stream: pa.NativeFile
    writer: pa.ipc.RecordBatchStreamWriter
    rows: int = 0

    @classmethod
    def open(cls, path: Path, schema: pa.Schema) -> YearPart:
        stream = pa.OSFile(str(path), "wb")
        return cls(path, stream, pa.ipc.new_stream(stream, schema, options=_PART_OPTIONS))

    def close(self) -> dict[str, object]:
        self.writer.close()
        self.stream.close()
        with self.path.open("rb") as written:
            digest = hashlib.file_digest(written, "sha256").hexdigest()
        return {"file": self.path.name, "rows": self.rows, "sha256": digest}


@dataclass
class Pass:
    """The figures of one pass, and the parts it has open."""

    config: NassBulkDatasetConfig
    folder: Path
    rows_read: int = 0
    parts: dict[int, YearPart] = field(default_factory=dict)

    def years(self) -> range:
        last = self.config.end_year or time.gmtime().tm_year
        return range(self.config.start_year, last + 1)

    def add(self, batch: pa.RecordBatch, keep: RowFilter, where: str) -> None:
        """Filter one block and append its rows to their years' parts."""
        self.rows_read += batch.num_rows
        kept = _only(batch, keep.mask(batch.column, batch.num_rows))
        years = _years(kept.column("year"), where)
        wanted = self.years()
        for year in pc.unique(years).to_pylist():
            if year in wanted:
                self._write(year, _only(kept, pc.equal(years, year)))

    def _write(self, year: int, rows: pa.RecordBatch) -> None:
        if year not in self.parts:
            self.parts[year] = YearPart.open(self.folder / part_name(year), rows.schema)
        part = self.parts[year]
        part.writer.write_batch(rows)
        part.rows += rows.num_rows


def _only(batch: pa.RecordBatch, mask: pa.Array) -> pa.RecordBatch:
    """The rows of ``batch`` where ``mask`` holds; the block itself, uncopied, when all do (a
    broad query, a block inside one year: most blocks of a file sorted by year).
    """
    return batch if pc.all(mask).as_py() else batch.filter(mask)


def _years(values: pa.Array, where: str) -> pa.Array:
    try:
        return pc.cast(values, pa.int32())
    except pa.ArrowInvalid:
        digits = pc.match_substring_regex(values, r"^\d{4}$")
        bad = values.filter(pc.invert(digits))[0].as_py()
        raise SourceError(f"{where}: YEAR holds {bad!r}, which is not a year") from None


def _reader(stream: gzip.GzipFile, where: str) -> pacsv.CSVStreamingReader:
    header = stream.peek(1 << 16).split(b"\n", 1)[0].decode("utf-8").rstrip("\r").split("\t")
    missing, extra = set(HEADERS) - set(header), set(header) - set(HEADERS)
    if missing or extra:
        raise SourceError(
            f"{where}: unexpected header: missing {sorted(missing)}, new {sorted(extra)}"
        )
    return pacsv.open_csv(
        stream,
        read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES, use_threads=False),
        parse_options=_PARSE,
        convert_options=_CONVERT,
    )


def _renamed(batch: pa.RecordBatch) -> pa.RecordBatch:
    """A block with the API's field names, in the API's order."""
    by_field = {HEADER_TO_FIELD[name]: batch.column(name) for name in batch.schema.names}
    return pa.RecordBatch.from_arrays([by_field[f] for f in FIELDS], names=list(FIELDS))


def run_pass(
    config: NassBulkDatasetConfig,
    download: Download,
    remote: RemoteFile,
    folder: Path,
    log: Callable[[str], None],
) -> dict[str, object]:
    """Stream the file once into per-year parts; the split manifest of what was written."""
    started = time.monotonic()
    where = f"dataset {config.name}, bulk file {remote.name} (ETag {remote.etag})"
    work = Pass(config, folder)
    keep = RowFilter(config.query)
    try:
        with gzip.GzipFile(fileobj=download, mode="rb") as stream:
            for batch in _reader(stream, where):
                work.add(_renamed(batch), keep, where)
    except (EOFError, gzip.BadGzipFile, zlib.error, pa.ArrowInvalid) as exc:
        raise SourceError(
            f"{where}: not a whole gzip of tab-separated rows after {download.received:,} of "
            f"{remote.size:,} bytes ({type(exc).__name__}: {exc}); nothing was split or loaded"
        ) from None
    finally:
        download.close()
    years = {str(year): part.close() for year, part in sorted(work.parts.items())}
    if download.received != remote.size:
        raise SourceError(
            f"{where}: {download.received:,} bytes arrived, HEAD said {remote.size:,}; "
            "nothing was split or loaded"
        )
    seconds = time.monotonic() - started
    log(f"{where}: {work.rows_read:,} rows read, {sum(p.rows for p in work.parts.values()):,} kept")
    return {
        "file": remote.name,
        "etag": remote.etag,
        "last_modified": remote.last_modified,
        "bytes": remote.size,
        "bytes_downloaded": download.received - download.reused,
        "bytes_from_disk": download.reused,
        "resumes": download.resumes,
        "rows_read": work.rows_read,
        "seconds": round(seconds, 3),
        "query": config.query,
        "years": years,
    }


def arrow_pages(path: Path, rows: int) -> Iterator[tuple[bytes, int]]:
    """A part as pages of at most ``rows`` rows: (an Arrow IPC stream, rows).

    The pages keep the part's zstd buffers: the staging's own zstd then has little to do, and
    its checksum reads a sixth of the bytes (twice as fast as uncompressed pages, measured).
    Memory holds one page: the part is memory-mapped and read block by block.
    """
    held: list[pa.RecordBatch] = []
    count = 0
    with pa.memory_map(str(path)) as source:
        reader = pa.ipc.open_stream(source)
        for batch in reader:
            while batch.num_rows:
                take = batch.slice(0, rows - count)
                held.append(take)
                count += take.num_rows
                batch = batch.slice(take.num_rows)
                if count == rows:
                    yield _ipc_page(reader.schema, held), count
                    held, count = [], 0
        if count:
            yield _ipc_page(reader.schema, held), count


def _ipc_page(schema: pa.Schema, batches: list[pa.RecordBatch]) -> bytes:
    """One page, its blocks joined into one batch: the pass's blocks are ~3,500 rows (1 MiB of
    text), and cleaning and Parquet row groups that small cost more than parsing saved.
    """
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema, options=_PART_OPTIONS) as writer:
        writer.write_table(pa.Table.from_batches(batches, schema).combine_chunks())
    return sink.getvalue().to_pybytes()


def write_manifest(folder: Path, manifest: dict[str, object]) -> None:
    """Write ``split.json`` last and atomically: its presence means the split is whole."""
    tmp = folder / f"{SPLIT_MANIFEST}.tmp"
    tmp.write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    tmp.replace(folder / SPLIT_MANIFEST)
