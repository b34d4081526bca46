"""HTTP stand-in for the USDA NASS Quick Stats API, serving a NassDataset on a local port.

Tests, the benchmark and the offline demo cannot reach the real API, so this server speaks its
contract (shared/reference/nass_quickstats.md §1) over real sockets: `key` auth (401), the
50,000-record limit (413 without a Content-Type), 400 for a query without data, 500 HTML for
comma-joined years, streamed JSON records whose key order changes from record to record. It also
keeps request statistics and a queue of injected faults (429, 5xx, resets, truncated or short
bodies, ...) so tests can check how a client copes. Optionally it renders each api_GET body once
and serves it from memory (`cache_responses`), so a benchmark times the client, not the generator.

Run it on its own with `python -m ingest_assets.standin.nass_server --port P
--records-per-year 2020=1000000`; the first line printed is the base URL.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import logging
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import orjson

from ingest_assets.kinds.nass.fields import FIELDS
from ingest_assets.standin.http import (
    COMMON_FAULTS,
    FaultQueue,
    RequestStats,
    ServedStandIn,
    TrackedHandler,
)
from ingest_assets.standin.nass_data import NassDataset, Record, Row

logger = logging.getLogger(__name__)

DEFAULT_API_KEY = "test-key-0000-0000-0000-000000000000"
RECORD_LIMIT = 50_000
ENDPOINTS = ("api_GET", "get_counts", "get_param_values")
FAULTS = COMMON_FAULTS
"""Fixed fault names; `slow:<seconds>` and `short:<records>` are accepted too."""

_T = TypeVar("_T")
_BATCH = 2_000  # records serialized per chunk written to the socket
_CONTROL_PARAMS = frozenset(("key", "format", "param", "callback"))


def _html_page(title: str, server: str) -> bytes:
    """An nginx-style error page, as the real API's proxies send."""
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>{server}</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


_PAGE_429 = _html_page("429 Too Many Requests", "nginx/1.23.3")
_PAGE_500 = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    b'"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    b"<title>500 - Internal server error.</title>\r\n</head>\r\n<body>\r\n"
    b"<h2>500 - Internal server error.</h2>\r\n"
    b"<h3>There is a problem with the resource you are looking for, and it cannot be displayed."
    b"</h3>\r\n</body>\r\n</html>\r\n"
)
_PAGE_502 = _html_page("502 Bad Gateway", "Microsoft-Azure-Application-Gateway/v2")
_PAGE_503 = _html_page(
    "503 Service Temporarily Unavailable", "Microsoft-Azure-Application-Gateway/v2"
)
_PAGE_MAINTENANCE = (
    b"<!DOCTYPE html>\r\n<html>\r\n<head><title>Quick Stats - Scheduled Maintenance</title>"
    b"</head>\r\n<body>\r\n<h1>Quick Stats is temporarily unavailable</h1>\r\n"
    b"<p>The site is undergoing scheduled maintenance. Please try again later.</p>\r\n"
    b"</body>\r\n</html>\r\n"
)
_HTML = "text/html"
_ERROR_PAGES: dict[str, tuple[int, bytes, tuple[tuple[str, str], ...]]] = {
    "429": (429, _PAGE_429, ()),
    "429-retry-after-0": (429, _PAGE_429, (("Retry-After", "0"),)),
    "429-retry-after-2": (429, _PAGE_429, (("Retry-After", "2"),)),
    "500": (500, _PAGE_500, ()),
    "502": (502, _PAGE_502, ()),
    "503": (503, _PAGE_503, ()),
    "html200": (200, _PAGE_MAINTENANCE, ()),
}


def csv_lines(rows: Sequence[Sequence[str]]) -> str:
    r"""`rows` as Quick Stats CSV lines: every field quoted, `"` doubled, `\n` line endings.

    Each line is one join; the rare batch with a `"` in a value (found by counting quotes: the
    joins alone put exactly 2 per field) is joined again with its fields escaped.
    """
    text = "".join(['"' + '","'.join(row) + '"\n' for row in rows])
    if text.count('"') == 2 * sum(map(len, rows)):
        return text
    return "".join(
        ['"' + '","'.join([field.replace('"', '""') for field in row]) + '"\n' for row in rows]
    )


def _error(message: str) -> bytes:
    return orjson.dumps({"error": [message]})


@dataclasses.dataclass(frozen=True)
class LoggedRequest:
    """One request as the stand-in saw it; the key's value is replaced by "REDACTED".

    `status` is 0 when the connection was dropped without a response; `started_at` is the
    stand-in's `time.monotonic()` when the request arrived and `client` its User-Agent, so tests
    can measure the request rate each client was held to.
    """

    endpoint: str
    path: str
    params: tuple[tuple[str, str], ...]
    status: int
    started_at: float = 0.0
    client: str = ""


NassStats = RequestStats[LoggedRequest]
"""The NASS stand-in's statistics: its requests logged with the key redacted."""


_CacheKey = tuple[str, tuple[tuple[str, str], ...]]
"""(format, sorted filters) of an api_GET request."""


class _ResponseCache:
    """Rendered api_GET bodies by (format, filters), valid for the dataset generation they were
    rendered at: a request that sees a newer generation (`NassDataset.revise()` moves it) drops
    every body, so none is served after the data changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = -1
        self._bodies: dict[_CacheKey, tuple[tuple[bytes, ...], int]] = {}

    def get(self, key: _CacheKey, generation: int) -> tuple[tuple[bytes, ...], int] | None:
        """The body's pieces and record count, if rendered from the data of `generation` (the
        dataset's current one, read before the request looked at the data).
        """
        with self._lock:
            if generation != self._generation:
                self._bodies.clear()
                self._generation = generation
            return self._bodies.get(key)

    def put(self, key: _CacheKey, generation: int, pieces: tuple[bytes, ...], records: int) -> None:
        """Keep a body rendered from the data of `generation`, unless the data moved on since."""
        with self._lock:
            if generation == self._generation:
                self._bodies[key] = (pieces, records)


def _check_fault(fault: str) -> None:
    name, _, arg = fault.partition(":")
    try:
        valid = fault in FAULTS or (name == "slow" and float(arg) >= 0)
        valid = valid or (name == "short" and int(arg) >= 0)
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(f"unknown fault {fault!r}; use one of {FAULTS}, slow:<s>, short:<n>")


class NassStandIn(ServedStandIn):
    """A local Quick Stats API on a real socket, served from a daemon thread.

    Use it as a context manager (or `start()`/`stop()`); point clients at `base_url`. With
    `cache_responses`, each successful api_GET body is rendered once per (format, filters) and
    served from memory until the data is revised (`stats.cache_hits` counts the bodies served so);
    faults apply to cached bodies as to fresh ones, and a `short:<n>` body is never cached. A
    cached JSON body repeats its key orders, which otherwise change per response.
    """

    def __init__(
        self,
        dataset: NassDataset | None = None,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        cache_responses: bool = False,
    ) -> None:
        super().__init__(host, port, _Handler, "nass-standin")
        self.dataset = dataset or NassDataset()
        self.cache = _ResponseCache() if cache_responses else None
        self.api_key = api_key
        self.latency = latency
        self.extra_fields: dict[str, str] = {}
        """Fields Quick Stats has added since ``FIELDS`` (name -> value), sent in every api_GET
        record, as the real API does when NASS adds one; set before the requests it affects."""
        self.stats = NassStats()
        self._faults = FaultQueue()
        self._serial = itertools.count()

    @property
    def base_url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/api"

    def inject(self, fault: str, times: int = 1, endpoint: str | None = None) -> None:
        """Serve `fault` to the next `times` requests to `endpoint` (None: any endpoint;
        `short:<n>` only ever applies to api_GET). Faults queue up in order.
        """
        _check_fault(fault)
        if endpoint is not None and endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {ENDPOINTS}")
        self._faults.add(fault, times, endpoint)

    def clear_faults(self) -> None:
        self._faults.clear()

    def reset_stats(self) -> None:
        self.stats.reset()

    def take_fault(self, endpoint: str) -> str | None:
        """Pop the next queued fault that applies to a request to `endpoint`."""
        return self._faults.take(
            endpoint, lambda kind: endpoint == "api_GET" or not kind.startswith("short:")
        )

    def next_serial(self) -> int:
        return next(self._serial)


class _Handler(TrackedHandler):
    """One connection; HTTP/1.1 keep-alive, so it may serve several requests in turn."""

    protocol_version = "HTTP/1.1"
    server_version = "Kestrel"
    sys_version = ""
    timeout = 120

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    def do_GET(self) -> None:
        standin: NassStandIn = self.server.standin
        url = urlsplit(self.path)
        name = url.path.rstrip("/").removeprefix("/api/")
        endpoint = name if name in ENDPOINTS else "other"
        self._params = parse_qsl(url.query, keep_blank_values=True)
        self._logged = False
        self._records = 0
        self._fault: str | None = None
        self._truncate = False
        redacted = tuple((k, "REDACTED" if k == "key" else v) for k, v in self._params)
        self._request = LoggedRequest(
            endpoint, url.path, redacted, 0, time.monotonic(), self.headers.get("User-Agent", "")
        )
        standin.stats.started()
        try:
            if standin.latency:
                time.sleep(standin.latency)
            if endpoint == "other":
                self._send(404, _error("not found"))
            else:
                self._fault = standin.take_fault(endpoint)
                self._serve(standin, endpoint)
        except (ConnectionError, TimeoutError):  # the client went away or stopped reading
            self.close_connection = True
        finally:
            self._log(0)

    def _log(self, status: int) -> None:
        """Record the request once, before its last bytes go out (so a client that has read
        the whole response always finds it in the statistics).
        """
        if not self._logged:
            self._logged = True
            request = dataclasses.replace(self._request, status=status)
            self.server.standin.stats.finished(request, self._records, self._fault)

    def _serve(self, standin: NassStandIn, endpoint: str) -> None:
        fault = self._fault or ""
        if fault in _ERROR_PAGES:
            status, page, headers = _ERROR_PAGES[fault]
            self._send(status, page, _HTML, headers)
            return
        if fault == "reset":
            self._log(0)
            self.close_connection = True
            return
        self._truncate = fault == "truncate"
        kind, _, arg = fault.partition(":")
        if kind == "slow":
            time.sleep(float(arg))
        drop = int(arg) if kind == "short" else 0

        params = self._params
        if dict(params).get("key") != standin.api_key:
            self._send(401, _error("unauthorized"))
        elif any("," in v for k, v in params if k == "year" or k.startswith("year__")):
            self._send(500, _PAGE_500, _HTML)
        elif endpoint == "get_counts":
            self._send_json({"count": standin.dataset.count(self._filters())})
        elif endpoint == "get_param_values":
            self._param_values(standin.dataset)
        else:
            self._api_get(standin, drop)

    def _filters(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self._params if k not in _CONTROL_PARAMS]

    def _param_values(self, dataset: NassDataset) -> None:
        param = dict(self._params).get("param", "")
        try:
            values = dataset.param_values(param, self._filters())
        except KeyError:
            self._send(400, _error("bad request - invalid query"))
            return
        self._send_json({param: values})

    def _api_get(self, standin: NassStandIn, drop: int) -> None:
        fmt = dict(self._params).get("format", "JSON").upper()
        if fmt not in ("JSON", "CSV"):
            self._send(415, _error("bad request - unsupported media type"))
            return
        filters = self._filters()
        generation = standin.dataset.generation  # before anything is read from the data
        count = standin.dataset.count(filters)
        if count > RECORD_LIMIT:
            self._send(413, _error(f"exceeds limit={RECORD_LIMIT}"), None)
            return
        if count == 0:
            self._send(400, _error("bad request - invalid query"), None)
            return
        content_type = "text/csv" if fmt == "CSV" else "application/json"
        if standin.cache is None or drop:
            self._send_stream(self._render(standin, fmt, filters, count - drop), content_type)
            return
        key = (fmt, tuple(sorted(filters)))
        cached = standin.cache.get(key, generation)
        standin.stats.cache_lookup(hit=cached is not None)
        if cached is None:
            pieces = tuple(self._render(standin, fmt, filters, count))
            standin.cache.put(key, generation, pieces, self._records)
        else:
            pieces, self._records = cached
        self._send_stream(iter(pieces), content_type)

    def _render(
        self, standin: NassStandIn, fmt: str, filters: list[tuple[str, str]], limit: int
    ) -> Iterator[bytes]:
        """The body of the first `limit` records matching `filters` in format `fmt`."""
        extra = dict(standin.extra_fields)
        if fmt == "CSV":
            rows: Iterator[tuple[str, ...]] = itertools.islice(
                standin.dataset.rows(filters), max(limit, 0)
            )
            if extra:
                rows = (row + tuple(extra.values()) for row in rows)
            return self._csv_body(rows, tuple(extra))
        records = standin.dataset.records(filters, random.Random(standin.next_serial()))
        if extra:
            records = ({**record, **extra} for record in records)
        return self._json_body(itertools.islice(records, max(limit, 0)))

    def _batches(self, records: Iterable[_T]) -> Iterator[list[_T]]:
        iterator = iter(records)
        while batch := list(itertools.islice(iterator, _BATCH)):
            self._records += len(batch)
            yield batch

    def _json_body(self, records: Iterable[Record]) -> Iterator[bytes]:
        yield b'{"data":['
        separator = b""
        for batch in self._batches(records):
            yield separator + orjson.dumps(batch)[1:-1]
            separator = b","
        yield b"]}"

    def _csv_body(self, rows: Iterable[Row], extra: tuple[str, ...] = ()) -> Iterator[bytes]:
        yield csv_lines([FIELDS + extra]).encode()
        for batch in self._batches(rows):
            yield csv_lines(batch).encode()

    def _send_json(self, payload: object) -> None:
        self._send(200, orjson.dumps(payload))

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None = "application/json",
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._log(status)
        if self._truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
        else:
            self.wfile.write(body)

    def _send_stream(self, pieces: Iterator[bytes], content_type: str) -> None:
        """Send a 200 with chunked transfer encoding, piece by piece."""
        if self._truncate:
            self._send(200, b"".join(pieces), content_type)
            return
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        pending = b""
        for piece in pieces:
            if pending:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(pending), pending))
            pending = piece
        self._log(200)
        last = b"%x\r\n%s\r\n" % (len(pending), pending) if pending else b""
        self.wfile.write(last + b"0\r\n\r\n")


def _year_records(text: str) -> tuple[int, int]:
    year, _, records = text.partition("=")
    return int(year), int(records)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve a stand-in until killed; print its base URL on the first line of stdout."""
    parser = argparse.ArgumentParser(description="Serve a local USDA NASS Quick Stats stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=DEFAULT_API_KEY)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--default-records", type=int, default=2_000)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per request")
    parser.add_argument(
        "--cache-responses",
        action="store_true",
        help="render each api_GET body once and serve it from memory until the data changes",
    )
    parser.add_argument(
        "--records-per-year",
        type=_year_records,
        nargs="+",
        action="extend",
        default=[],
        metavar="YEAR=N",
    )
    args = parser.parse_args(argv)
    dataset = NassDataset(dict(args.records_per_year), args.default_records, args.seed)
    with NassStandIn(
        dataset, args.api_key, args.host, args.port, args.latency, args.cache_responses
    ) as standin:
        print(standin.base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
