"""HTTP stand-in for the Quick Stats bulk files: a ``datasets/`` listing and the daily file.

The file is generated from a ``NassDataset`` (the records the API stand-in serves), written as
the real one is (reference §8): tab-separated, the 39 upper-case headers, gzip, named
``qs.crops_YYYYMMDD.txt.gz``, so a dataset loaded through either stand-in can be compared.
Served with ``ETag``, ``Last-Modified``, ``Accept-Ranges`` and ``Range``/``If-Range``.

Faults: ``cut`` (the next file response stops halfway and the connection is closed),
``publish(day, truncated=True)`` (a file whose gzip ends early), and ``publish(day)`` itself,
a new daily file replacing the old one. ``stats`` counts downloads (responses starting at byte
0), ranges asked for and bytes served.

Run it on its own with ``python -m ingest_assets.standin.nass_bulk_server --port P``; the first
line printed is the listing URL.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import re
import tempfile
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from pathlib import Path

from ingest_assets.kinds.nass_bulk.layout import HEADERS, file_name
from ingest_assets.standin.http import FaultQueue, ServedStandIn, TrackedHandler
from ingest_assets.standin.nass_data import NassDataset

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
_SEND_BYTES = 1 << 16


@dataclass(frozen=True)
class Published:
    """The one file on the listing: its name, bytes on disk and HTTP validators."""

    name: str
    path: Path
    size: int
    etag: str
    last_modified: str


@dataclass
class BulkStats:
    """What the stand-in served, for tests to assert on."""

    downloads: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    bytes_served: int = 0
    heads: int = 0
    listings: int = 0


def write_file(dataset: NassDataset, path: Path, truncated: bool = False) -> None:
    """The dataset's records as a tab-separated gzip file with the bulk file's header."""
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as out:
        out.write(("\t".join(HEADERS) + "\n").encode())
        rows = dataset.rows()
        while batch := [row for _, row in zip(range(5_000), rows, strict=False)]:
            out.write("".join("\t".join(row) + "\n" for row in batch).encode())
    if truncated:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])


class NassBulkStandIn(ServedStandIn):
    """The listing page and the current crops file of ``dataset``, on a local port."""

    def __init__(self, dataset: NassDataset, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port, _Handler, "nass-bulk-standin")
        self.dataset = dataset
        self.faults = FaultQueue()
        self.stats = BulkStats()
        self._folder = Path(tempfile.mkdtemp(prefix="nass-bulk-"))
        self._lock = threading.Lock()
        self.published = self.publish("20261202")

    @property
    def listing_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/datasets/"

    def publish(self, day: str, truncated: bool = False) -> Published:
        """Generate and publish the crops file of ``day`` (YYYYMMDD), replacing the current one."""
        name = file_name("crops", day)
        path = self._folder / name
        write_file(self.dataset, path, truncated)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
        published_at = datetime.strptime(day + "0813", "%Y%m%d%H%M").replace(tzinfo=UTC)
        stamp = formatdate(published_at.timestamp(), usegmt=True)
        published = Published(name, path, path.stat().st_size, f'"{digest}"', stamp)
        with self._lock:
            self.published = published
        return published

    def reset_stats(self) -> None:
        self.stats = BulkStats()

    def stop(self) -> None:
        super().stop()
        for path in self._folder.glob("*"):
            path.unlink()


def _listing(published: Published) -> bytes:
    """A page shaped like https://www.nass.usda.gov/datasets/: a table of links and sizes."""
    rows = [(published.name, published.size), ("Readme.txt", 4_321)]
    cells = "".join(
        f'<tr><td><a href="{name}">{name}</a></td><td>{published.last_modified}</td>'
        f"<td>{size:,}</td></tr>\n"
        for name, size in rows
    )
    return (
        "<html><head><title>Quick Stats Datasets</title></head><body><h1>Datasets</h1>"
        f"<table><tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n{cells}"
        "</table></body></html>"
    ).encode()


class _Handler(TrackedHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    @property
    def standin(self) -> NassBulkStandIn:
        return self.server.standin

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        published = self.standin.published
        if self.path.rstrip("/") == "/datasets":
            self.standin.stats.listings += 1
            self._send(200, _listing(published), "text/html")
        elif self.path == f"/datasets/{published.name}":
            self._file(published, body)
        else:
            self._send(404, b"not found", "text/plain")

    def _send(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _file(self, published: Published, body: bool) -> None:
        start, end = self._range(published)
        partial = start > 0 or end < published.size - 1
        self.send_response(206 if partial else 200)
        self.send_header("Content-Type", "application/x-gzip")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("ETag", published.etag)
        self.send_header("Last-Modified", published.last_modified)
        self.send_header("Accept-Ranges", "bytes")
        if partial:
            self.send_header("Content-Range", f"bytes {start}-{end}/{published.size}")
        self.end_headers()
        if not body:
            self.standin.stats.heads += 1
            return
        self._count(start, end)
        self._send_bytes(published.path, start, end)

    def _range(self, published: Published) -> tuple[int, int]:
        """The byte range asked for; the whole file if none, or if ``If-Range`` is stale."""
        match = _RANGE.match(self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        if match is None or (if_range is not None and if_range != published.etag):
            return 0, published.size - 1
        end = int(match.group(2)) if match.group(2) else published.size - 1
        return int(match.group(1)), min(end, published.size - 1)

    def _count(self, start: int, end: int) -> None:
        stats = self.standin.stats
        if start == 0:
            stats.downloads += 1
        stats.ranges.append((start, end))

    def _send_bytes(self, path: Path, start: int, end: int) -> None:
        stop = end + 1
        if self.standin.faults.take("file", lambda name: name == "cut"):
            stop = start + (stop - start) // 2
            self.close_connection = True
        with path.open("rb") as handle:
            handle.seek(start)
            position = start
            while position < stop:
                chunk = handle.read(min(_SEND_BYTES, stop - position))
                self.wfile.write(chunk)
                self.standin.stats.bytes_served += len(chunk)
                position += len(chunk)
        if self.close_connection:
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)


def main() -> None:
    """Serve a stand-in until killed; print its listing URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description="Serve a local Quick Stats bulk-file stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--default-records", type=int, default=2_000)
    args = parser.parse_args()
    dataset = NassDataset(default_records=args.default_records, seed=args.seed)
    with NassBulkStandIn(dataset, args.host, args.port) as standin:
        print(standin.listing_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
