"""A local stand-in for the Socrata SODA 2.1 API, for tests and the offline demo.

It serves ``GET /resource/{id}.json`` (a practical SoQL subset) and ``GET /api/views/{id}.json``
over real sockets, with the quirks an ingester has to survive: a default ``$limit`` of 1000,
row order that changes between requests when no ``$order`` is given, every value a string,
nulls omitted, ``count(*)`` answered as a string, ``rowsUpdatedAt`` missing from metadata on
some portals, app-token checks, and injectable faults (throttling, 5xx, resets, truncation,
slowness, HTML pages, row counts that drift during paging). Tests change the data between
requests with ``replace_rows`` / ``upsert_rows`` / ``delete_rows``.

The data (portal CSV exports as API rows, stored datasets) lives in ``socrata_data`` and the
SoQL parser in ``socrata_soql``; this module holds the HTTP side, the faults and the demo process.
"""

from __future__ import annotations

import argparse
import functools
import random
import re
import signal
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, replace
from email.utils import formatdate
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

import orjson

from ingest_assets.standin import socrata_soda3 as soda3
from ingest_assets.standin.http import (
    COMMON_FAULTS,
    FaultQueue,
    RequestStats,
    ServedStandIn,
    TrackedHandler,
)
from ingest_assets.standin.socrata_data import (
    _HEADER_TYPES,
    DEFAULT_LIMIT,
    LA311_2017_FIELDS,
    SEATTLE_PET_LICENSE_FIELDS,
    Field,
    Row,
    _Dataset,
    _fixed_timestamp,
    _sort_key,
    _stored_value,
    columns_of,
    rows_from_portal_csv,
)
from ingest_assets.standin.socrata_soql import (
    _Expr,
    _malformed,
    _Parser,
    _QueryError,
    _SelectItem,
    _unsupported,
)

# --- stats and faults --------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRecord:
    """One request as the stand-in saw it; whether a token was sent, never the token."""

    endpoint: str  # one of ENDPOINTS, or "other"
    path: str
    params: dict[str, str]
    token_sent: bool


StandInStats = RequestStats[RequestRecord]
"""The Socrata stand-in's statistics: whether each request sent a token, never the token."""


ENDPOINTS = ("resource", "views")
FAULTS = COMMON_FAULTS
_PARAMETRISED_FAULTS = {"slow": float, "count-drift": int}


def _html(status: str) -> bytes:
    return (
        f"<html><head><title>{status}</title></head>"
        f"<body><center><h1>{status}</h1></center><hr><center>nginx</center></body></html>\n"
    ).encode()


class _Response(NamedTuple):
    status: int
    body: bytes
    headers: dict[str, str]


def _json_response(status: int, payload: object) -> _Response:
    return _Response(
        status, orjson.dumps(payload), {"Content-Type": "application/json;charset=utf-8"}
    )


def _row_key(
    name: str, key: Callable[[object], tuple[object, ...]], row: Row
) -> tuple[object, ...]:
    return key(row.get(name))


def _rows_body(rows: Iterable[Row]) -> bytes:
    r"""Rows laid out as SODA 2.1 does: ``[{...}\n,{...}]\n``."""
    return b"[" + b"\n,".join(orjson.dumps(row) for row in rows) + b"]\n"


# --- the server --------------------------------------------------------------------------------


class _Handler(TrackedHandler):
    def do_GET(self) -> None:
        self.server.standin._handle(self)

    def do_POST(self) -> None:
        self.server.standin._handle(self)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read ``stats`` instead of the access log."""

    def send(self, response: _Response, *, truncate: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body[: len(response.body) // 2] if truncate else response.body)

    def reset(self) -> None:
        """Drop the connection without an answer; SO_LINGER 0 makes close() send a RST."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class SocrataStandIn(ServedStandIn):
    """A SODA 2.1 server on a local port; see the module docstring for what it imitates.

    ``shuffle_seed`` fixes the per-request shuffles of unordered results, so tests that
    show what paging without ``$order`` does are repeatable.
    """

    def __init__(
        self,
        app_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        shuffle_seed: int = 0,
    ) -> None:
        super().__init__(host, port, _Handler, "socrata-standin")
        self._app_token = app_token
        self._latency = latency
        self._shuffle_seed = shuffle_seed
        self._lock = threading.Lock()
        self._datasets: dict[str, _Dataset] = {}
        self._faults = FaultQueue()
        self._stats = StandInStats()
        self._request_number = 0
        self._clock = 0
        self._next_row_id = 0

    @property
    def base_url(self) -> str:
        """``http://host:port``: the "domain" a client is configured with."""
        host, port = self.address
        return f"http://{host}:{port}"

    # data
    def add_dataset(
        self,
        dataset_id: str,
        rows: list[Row],
        columns: dict[str, str],
        row_identifier: str | None = None,
        name: str | None = None,
    ) -> None:
        """Create (or recreate) a dataset; ``columns`` maps field name -> dataTypeName."""
        if row_identifier is not None and row_identifier not in columns:
            raise ValueError(f"row identifier {row_identifier!r} is not a column")
        with self._lock:
            now = self._tick()
            dataset = _Dataset(dataset_id, name or dataset_id, dict(columns), row_identifier, now)
            dataset.rows = self._new_rows(dataset, rows, now)
            dataset.rows_updated_at = dataset.view_last_modified = now
            self._datasets[dataset_id] = dataset

    def replace_rows(self, dataset_id: str, rows: list[Row]) -> None:
        """Full replace: every row gets a new ``:id`` and ``:created_at``, as on the real API."""
        with self._lock:
            dataset = self._dataset(dataset_id)
            now = self._tick()
            dataset.rows = self._new_rows(dataset, rows, now)
            self._touched(dataset, now)

    def upsert_rows(self, dataset_id: str, rows: list[Row], key: str) -> None:
        """Rows whose ``key`` matches replace the stored rows (keeping ``:id``); others append."""
        with self._lock:
            dataset = self._dataset(dataset_id)
            if key not in dataset.columns:
                raise ValueError(f"{key!r} is not a column of {dataset_id}")
            now = self._tick()
            positions: dict[object, list[int]] = {}
            for position, stored in enumerate(dataset.rows):
                positions.setdefault(stored.get(key), []).append(position)
            for new in self._new_rows(dataset, rows, now):
                matches = positions.get(new.get(key), [])
                for position in matches:
                    old = dataset.rows[position]
                    dataset.rows[position] = {
                        **new,
                        ":id": old[":id"],
                        ":created_at": old[":created_at"],
                    }
                if not matches:
                    positions[new.get(key)] = [len(dataset.rows)]
                    dataset.rows.append(new)
            self._touched(dataset, now)

    def delete_rows(self, dataset_id: str, predicate: Callable[[Row], bool]) -> int:
        """Delete the rows ``predicate`` accepts (it must not change them); returns how many."""
        with self._lock:
            dataset = self._dataset(dataset_id)
            kept = [row for row in dataset.rows if not predicate(row)]
            deleted = len(dataset.rows) - len(kept)
            dataset.rows = kept
            self._touched(dataset, self._tick())
            return deleted

    def rows(self, dataset_id: str) -> list[Row]:
        """Copies of the stored rows, system fields included, in ``:id`` order."""
        with self._lock:
            return deepcopy(self._dataset(dataset_id).rows)

    def set_metadata_quirk(self, dataset_id: str, drop_rows_updated_at: bool = True) -> None:
        """Leave ``rowsUpdatedAt`` out of the metadata, as data.cdc.gov started doing in 2025."""
        with self._lock:
            self._dataset(dataset_id).drop_rows_updated_at = drop_rows_updated_at

    def drop_metadata_fields(self, dataset_id: str, *fields: str) -> None:
        """Leave these out of every metadata answer: ``viewLastModified`` (``/api/views``),
        ``dataUpdatedAt`` (Metadata API v1), ``data_updated_at`` (catalog).
        """
        with self._lock:
            self._dataset(dataset_id).dropped_metadata = frozenset(fields)

    # faults and stats
    def inject(self, fault: str, times: int = 1, endpoint: str | None = None) -> None:
        """Answer the next ``times`` requests (to ``endpoint``: "resource" or "views") badly.

        Faults: "429" (JSON body), "429-retry-after-0" and "429-retry-after-2" (empty body with
        that Retry-After), "500", "502", "503", "reset" (no answer, connection reset),
        "truncate" (half the body, then close), "slow:<seconds>" (late but correct),
        "html200" (an HTML page with status 200), "count-drift:<n>" (the next ``times``
        ``count(*)`` answers are off by n).
        """
        if times < 1 or (endpoint is not None and endpoint not in ENDPOINTS):
            raise ValueError(f"bad times={times} or endpoint={endpoint!r}; use one of {ENDPOINTS}")
        kind, _, argument = fault.partition(":")
        if kind in _PARAMETRISED_FAULTS and argument:
            _PARAMETRISED_FAULTS[kind](argument)  # raises ValueError when malformed
        elif fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        self._faults.add(fault, times, endpoint)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def stats(self) -> StandInStats:
        """A consistent copy of the counters, safe to read while requests run."""
        return self._stats.snapshot()

    def reset_stats(self) -> None:
        self._stats.reset()

    # internals (call with self._lock held)
    def _tick(self) -> int:
        """Epoch seconds, strictly increasing even for several changes within one second."""
        self._clock = max(int(time.time()), self._clock + 1)
        return self._clock

    def _dataset(self, dataset_id: str) -> _Dataset:
        try:
            return self._datasets[dataset_id]
        except KeyError:
            raise KeyError(f"no dataset {dataset_id!r} in the Socrata stand-in") from None

    def _new_rows(self, dataset: _Dataset, rows: Iterable[Row], now: int) -> list[Row]:
        stamp = _fixed_timestamp(now)
        stored = []
        for row in rows:
            if not row.keys() <= dataset.columns.keys():
                unknown = sorted(row.keys() - dataset.columns.keys())
                raise ValueError(f"{dataset.dataset_id}: unknown columns {unknown}")
            self._next_row_id += 1
            values = {
                name: _stored_value(value, dataset.columns[name])
                for name, value in row.items()
                if value is not None
            }
            system = {":id": f"row-{self._next_row_id:08x}", ":created_at": stamp}
            stored.append({**values, **system, ":updated_at": stamp})
        return stored

    @staticmethod
    def _touched(dataset: _Dataset, now: int) -> None:
        dataset.rows_updated_at = dataset.view_last_modified = now

    # request handling (these take the lock themselves)
    def _take_fault(self, endpoint: str, counting: bool) -> str | None:
        """The next pending fault for this request (``counting``: a count(*) answer), if any."""
        fault = self._faults.take(
            endpoint, lambda name: name.startswith("count-drift:") == counting
        )
        if fault is not None:
            self._stats.fault_served(fault)
        return fault

    def _handle(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        token = handler.headers.get("X-App-Token") or params.pop("$$app_token", None)
        api, dataset_id = _route(url.path)
        if api == "soda3":
            length = int(handler.headers.get("Content-Length") or 0)
            try:
                params = soda3.query_params(handler.rfile.read(length))
            except soda3.Soda3BodyError as error:
                params = {"$$body_error": orjson.dumps(error.body).decode()}
        endpoint = _ENDPOINT_OF_API.get(api, api)
        with self._lock:
            self._request_number += 1
            request_number = self._request_number
        self._stats.started(RequestRecord(endpoint, url.path, params, token is not None))
        try:
            time.sleep(self._latency)
            fault = self._take_fault(endpoint, counting=False)
            if fault == "reset":
                handler.reset()
                return
            if fault is not None and fault.startswith("slow:"):
                time.sleep(float(fault.partition(":")[2]))
            response = _fault_response(fault) or self._answer(
                api, dataset_id, params, token, request_number
            )
            handler.send(response, truncate=fault == "truncate")
        finally:
            self._stats.finished()

    def _answer(
        self,
        api: str,
        dataset_id: str,
        params: dict[str, str],
        token: str | None,
        request_number: int,
    ) -> _Response:
        refusal = self._refusal(api, params, token)
        if refusal is not None:
            return refusal
        if api == "catalog":
            with self._lock:
                ids = params.get("ids", "").split(",")
                found = [_catalog_resource(self._datasets[i]) for i in ids if i in self._datasets]
            return _json_response(200, soda3.catalog(found))
        with self._lock:
            dataset = self._datasets.get(dataset_id)
            # Rows are replaced, never changed in place, so a shallow copy is a snapshot.
            snapshot = None if dataset is None else replace(dataset, rows=list(dataset.rows))
        if snapshot is None:
            return _not_found(_ENDPOINT_OF_API.get(api, api), dataset_id)
        if api == "views":
            return _json_response(200, _metadata(snapshot))
        if api == "metadata_v1":
            return _json_response(200, _metadata_v1(snapshot))
        try:
            answer = self._query(snapshot, params, request_number)
        except _QueryError as error:
            return _json_response(error.status, error.body)
        if api == "soda3":  # same rows, SODA3's layout
            rows = orjson.loads(answer.body)
            return answer._replace(body=soda3.rows_body(rows))
        return answer

    def _refusal(self, api: str, params: dict[str, str], token: str | None) -> _Response | None:
        """What the portal answers before looking at the dataset: bad token, path or body."""
        if self._app_token is not None and token is not None and token != self._app_token:
            return _json_response(403, {"message": "Invalid app_token specified", "error": True})
        if api == "other":
            return _json_response(404, {"error": True, "message": "Not found"})
        if api == "soda3" and token is None:
            return _json_response(403, soda3.SODA3_REFUSAL)
        if "$$body_error" in params:
            return _Response(400, params["$$body_error"].encode(), {})
        return None

    def _query(self, dataset: _Dataset, params: dict[str, str], request_number: int) -> _Response:
        query = _compile(dataset, params)
        matched = [
            row for row in dataset.rows if all(c.evaluate(row) is True for c in query.conditions)
        ]
        window = slice(query.offset, query.offset + query.limit)
        if query.items[0].aggregate:
            counting = any(item.source == "*" for item in query.items)
            drift = self._take_fault("resource", counting=True) if counting else None
            drift_by = int(drift.split(":")[1]) if drift else 0
            page = [_aggregate(query.items, matched, drift_by)][window]
        else:
            if not any(name == ":id" for name, _, _ in query.order):
                # No total order: like the real service, equal rows come back in any order.
                random.Random(f"{self._shuffle_seed}:{request_number}").shuffle(matched)
            for name, data_type, descending in reversed(query.order):
                key = _sort_key(data_type)
                matched.sort(key=functools.partial(_row_key, name, key), reverse=descending)
            page = [
                {item.output: row[item.source] for item in query.items if item.source in row}
                for row in matched[window]
            ]
        self._stats.served(len(page))
        last_modified = formatdate(dataset.rows_updated_at, usegmt=True)
        types = [_HEADER_TYPES.get(item.data_type, item.data_type) for item in query.items]
        headers = {
            "Content-Type": "application/json;charset=utf-8",
            "X-SODA2-Fields": orjson.dumps([item.output for item in query.items]).decode(),
            "X-SODA2-Types": orjson.dumps(types).decode(),
            "X-SODA2-Truth-Last-Modified": last_modified,
            "Last-Modified": last_modified,
            "X-Socrata-RequestId": uuid.uuid4().hex,
        }
        return _Response(200, _rows_body(page), headers)


class _Query(NamedTuple):
    conditions: list[_Expr]
    items: list[_SelectItem]
    order: list[tuple[str, str, bool]]  # (column, dataTypeName, descending)
    limit: int
    offset: int


def _compile(dataset: _Dataset, params: Mapping[str, str]) -> _Query:
    """Check and compile the SoQL parameters of one request against the dataset's schema."""
    schema, dataset_id = dataset.schema, dataset.dataset_id
    conditions, order, numbers = [], [], {"$limit": DEFAULT_LIMIT, "$offset": 0}
    for name, value in params.items():
        if name in ("$select", "$where", "$order") or name.startswith("$$"):
            continue
        if name in numbers:
            if not value.isdigit():
                raise _malformed(value, 0)
            numbers[name] = int(value)
        elif name in ("$group", "$having", "$q", "$query"):
            raise _unsupported(name)
        elif name.startswith("$"):
            raise _QueryError({"error": True, "message": f"Unrecognized arguments [{name[1:]}]"})
        else:  # a simple filter, ?column=value
            quoted = value.replace("'", "''")
            conditions.append(_Parser(f"`{name}` = '{quoted}'", schema, dataset_id).condition())
    if "$where" in params:
        conditions.append(_Parser(params["$where"], schema, dataset_id).condition())
    if "$order" in params:
        order = _Parser(params["$order"], schema, dataset_id).ordering()
    items = _Parser(params.get("$select", "*"), schema, dataset_id).selection()
    return _Query(conditions, items, order, numbers["$limit"], numbers["$offset"])


def _not_found(endpoint: str, dataset_id: str) -> _Response:
    """The portal's 404 for an unknown dataset id, worded as each endpoint words it."""
    if endpoint == "views":
        message = f"Cannot find view with id {dataset_id}"
        return _json_response(404, {"code": "not_found", "error": True, "message": message})
    return _json_response(
        404,
        {
            "message": "soda.dataset.not-found",
            "errorCode": "soda.dataset.not-found",
            "data": {"dataset": dataset_id},
        },
    )


# SODA3 queries are counted with the 2.1 rows endpoint, metadata v1 with views: same resources.
_ENDPOINT_OF_API = {"soda3": "resource", "metadata_v1": "views", "catalog": "views"}


def _route(path: str) -> tuple[str, str]:
    """(api, dataset id) for a request path; ``_ENDPOINT_OF_API`` maps the api to its endpoint."""
    match = re.fullmatch(r"/resource/([^/]+)\.json", path)
    if match:
        return "resource", match[1]
    match = re.fullmatch(r"/api/v3/views/([^/]+)/query\.json", path)
    if match:
        return "soda3", match[1]
    match = re.fullmatch(r"/api/views/metadata/v1/([^/]+)", path)
    if match:
        return "metadata_v1", match[1]
    if path == "/api/catalog/v1":
        return "catalog", ""
    match = re.fullmatch(r"/api/views/([^/]+?)(?:\.json)?", path)
    if match:
        return "views", match[1]
    return "other", ""


def _fault_response(fault: str | None) -> _Response | None:
    """The canned answer for a fault that replaces the real one, else None."""
    if fault == "429":
        return _json_response(429, {"error": True, "message": "Too many requests"})
    if fault in ("429-retry-after-0", "429-retry-after-2"):
        return _Response(429, b"", {"Retry-After": fault.rsplit("-", 1)[1]})
    if fault == "500":
        return _json_response(500, {"error": True, "message": "Internal error", "status": 500})
    if fault in ("502", "503"):
        title = "502 Bad Gateway" if fault == "502" else "503 Service Temporarily Unavailable"
        return _Response(int(fault), _html(title), {"Content-Type": "text/html"})
    if fault == "html200":
        page = _html("Socrata is down for maintenance")
        return _Response(200, page, {"Content-Type": "text/html; charset=utf-8"})
    return None


def _aggregate(items: Sequence[_SelectItem], rows: Sequence[Row], drift: int) -> Row:
    result: Row = {}
    for item in items:
        if item.source == "*":
            result[item.output] = str(len(rows) + drift)
            continue
        values = [row[item.source] for row in rows if item.source in row]
        if item.aggregate == "count":
            result[item.output] = str(len(values))
        elif values:
            key = _sort_key(item.data_type)
            pick = min if item.aggregate == "min" else max
            result[item.output] = pick(values, key=key)
    return result


def _metadata(dataset: _Dataset) -> dict[str, object]:
    """The ``/api/views/{id}.json`` document (the fields an ingester reads).

    ``metadata.rowIdentifier`` is the field name here; the real API sometimes gives the
    column id or ``0`` instead, which ``rowIdentifierColumnId`` carries.
    """
    column_ids = {name: 1000 + position for position, name in enumerate(dataset.columns, 1)}
    document: dict[str, object] = {
        "id": dataset.dataset_id,
        "name": dataset.name,
        "assetType": "dataset",
        "createdAt": dataset.created_at,
        "publicationDate": dataset.created_at,
        "rowsUpdatedAt": dataset.rows_updated_at,
        "viewLastModified": dataset.view_last_modified,
        "columns": [
            {
                "id": column_ids[name],
                "name": name,
                "dataTypeName": data_type,
                "fieldName": name,
                "position": position,
                "renderTypeName": data_type,
            }
            for position, (name, data_type) in enumerate(dataset.columns.items(), 1)
        ],
        "metadata": {"rowIdentifier": dataset.row_identifier or 0},
    }
    if dataset.row_identifier is not None:
        document["rowIdentifierColumnId"] = column_ids[dataset.row_identifier]
    if dataset.drop_rows_updated_at:
        del document["rowsUpdatedAt"]
    if "viewLastModified" in dataset.dropped_metadata:
        del document["viewLastModified"]
    return document


def _metadata_v1(dataset: _Dataset) -> dict[str, object]:
    document = soda3.metadata_v1(
        dataset.dataset_id,
        dataset.name,
        dataset.created_at,
        dataset.rows_updated_at,
        dataset.view_last_modified,
    )
    if "dataUpdatedAt" in dataset.dropped_metadata:
        del document["dataUpdatedAt"]
    return document


def _catalog_resource(dataset: _Dataset) -> dict[str, object]:
    resource: dict[str, object] = {"id": dataset.dataset_id, "name": dataset.name}
    if "data_updated_at" not in dataset.dropped_metadata:
        resource["data_updated_at"] = soda3.iso(dataset.rows_updated_at)
    return resource


# --- the demo process --------------------------------------------------------------------------


class DemoDataset(NamedTuple):
    """One dataset the ``--load-demo`` process serves, and the fixture it comes from."""

    dataset_id: str
    fixture: str  # path under the fixtures folder
    fields: dict[str, Field]
    row_identifier: str | None
    name: str


DEMO_DATASETS = (
    DemoDataset(
        "la311-2017",
        "la311/MyLA311_Service_Request_Data_2017_Subset.csv.gz",
        LA311_2017_FIELDS,
        "srnumber",
        "MyLA311 Service Request Data 2017 (subset)",
    ),
    DemoDataset(
        "pets-2023",
        "seattle_pet_licenses/Seattle_Pet_Licenses_snapshot_2023-04.csv.gz",
        SEATTLE_PET_LICENSE_FIELDS,
        None,
        "Seattle Pet Licenses (snapshot 2023-04)",
    ),
    DemoDataset(
        "pets-2025",
        "seattle_pet_licenses/Seattle_Pet_Licenses_20250714.csv.gz",
        SEATTLE_PET_LICENSE_FIELDS,
        None,
        "Seattle Pet Licenses (snapshot 2025-07-14)",
    ),
)


def load_demo(standin: SocrataStandIn, fixtures: Path) -> None:
    """Load the gzipped fixtures into the ``DEMO_DATASETS`` ids."""
    for demo in DEMO_DATASETS:
        rows = rows_from_portal_csv(fixtures / demo.fixture, demo.fields)
        standin.add_dataset(
            demo.dataset_id, rows, columns_of(demo.fields), demo.row_identifier, demo.name
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the Socrata stand-in from the command line until stopped."""
    parser = argparse.ArgumentParser(description="Serve a local Socrata SODA 2.1 stand-in.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--app-token", help="reject requests that send a different token")
    parser.add_argument("--load-demo", action="store_true", help="serve the demo datasets")
    parser.add_argument("--fixtures", type=Path, help="folder holding the demo fixtures")
    args = parser.parse_args(argv)
    if args.load_demo and args.fixtures is None:
        parser.error("--load-demo needs --fixtures DIR")
    standin = SocrataStandIn(app_token=args.app_token, host=args.host, port=args.port)
    if args.load_demo:
        load_demo(standin, args.fixtures)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with standin:
        print(standin.base_url, flush=True)
        stopping.wait()


if __name__ == "__main__":
    main()
