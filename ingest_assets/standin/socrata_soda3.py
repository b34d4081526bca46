"""The stand-in's SODA3 and newer metadata surfaces: POST query bodies, Metadata API v1, catalog.

Kept apart from ``socrata_server`` (the SODA 2.1 contract and the SoQL evaluator) because these
are translations onto that contract: a SODA3 body ``{"query": "SELECT … WHERE … ORDER BY …",
"page": {"pageNumber": n, "pageSize": s}}`` becomes the ``$select/$where/$order/$limit/$offset``
parameters the 2.1 evaluator already checks, so both APIs answer the same rows and errors. A
SODA3 request without an app token is refused with 403, as dev.socrata.com documents ("Requests
must be either authenticated by a user or marked with a valid application token"), using the
body Socrata sends to unauthenticated callers. The metadata documents carry ISO timestamps, as
the Metadata API v1 and the catalog (Discovery) API do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

SODA3_REFUSAL = {"message": "You must be logged in to access this resource", "error": True}
_CLAUSES = re.compile(r"'(?:[^']|'')*'|\b(SELECT|WHERE|ORDER\s+BY)\b", re.IGNORECASE)
_SOQL_PARAMS = {"SELECT": "$select", "WHERE": "$where", "ORDER BY": "$order"}


class Soda3BodyError(ValueError):
    """A SODA3 body the service would reject; ``body`` is its JSON error answer."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.body = {"code": "query.compiler.malformed", "error": True, "message": message}


def query_params(body: bytes) -> dict[str, str]:
    """The SODA 2.1 parameters equivalent to a SODA3 query body (pages are 1-based)."""
    try:
        request = orjson.loads(body)
        text = request["query"]
    except (orjson.JSONDecodeError, TypeError, KeyError):
        raise Soda3BodyError("a SODA3 body is a JSON object with a 'query'") from None
    params = _split_soql(str(text))
    page = request.get("page")
    if page is not None:
        try:
            number, size = int(page["pageNumber"]), int(page["pageSize"])
        except (TypeError, KeyError, ValueError):
            raise Soda3BodyError("page needs integer pageNumber and pageSize") from None
        if number < 1 or size < 1:
            raise Soda3BodyError(f"page {number} of size {size}: both start at 1")
        params["$limit"], params["$offset"] = str(size), str((number - 1) * size)
    return params


def _split_soql(text: str) -> dict[str, str]:
    """``SELECT a WHERE b ORDER BY c`` → {"$select": a, "$where": b, "$order": c}."""
    marks = [(m.start(), m.end(), m[1]) for m in _CLAUSES.finditer(text) if m[1]]
    if not marks or marks[0][0] != len(text) - len(text.lstrip()):
        raise Soda3BodyError(f"Could not parse SoQL query {text!r}: expected SELECT first")
    params: dict[str, str] = {}
    for (_, end, word), following in zip(marks, [*marks[1:], (len(text), 0, "")], strict=True):
        name = _SOQL_PARAMS[" ".join(word.upper().split())]
        if name in params:
            raise Soda3BodyError(f"Could not parse SoQL query {text!r}: {word} twice")
        params[name] = text[end : following[0]].strip()
    return params


def rows_body(rows: Iterable[Mapping[str, Any]]) -> bytes:
    r"""Rows laid out as SODA3 does (an empty answer is ``[\n]\n``)."""
    lines = [orjson.dumps(row) for row in rows]
    return b"[\n" + b"".join([b",\n".join(lines), b"\n"] if lines else []) + b"]\n"


def iso(epoch: int) -> str:
    """An epoch second as the catalog API writes timestamps (UTC, milliseconds, ``Z``)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def metadata_v1(
    dataset_id: str, name: str, created: int, data_updated: int, view_modified: int
) -> dict[str, object]:
    """``/api/views/metadata/v1/{id}``: the fields an ingester reads, ISO strings."""
    return {
        "id": dataset_id,
        "name": name,
        "createdAt": iso(created),
        "dataUpdatedAt": iso(data_updated),
        "metadataUpdatedAt": iso(view_modified),
        "updatedAt": iso(max(data_updated, view_modified)),
    }


def catalog(results: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """``/api/catalog/v1?ids=…``: one result per known id, its dates under ``resource``."""
    return {
        "results": [{"resource": dict(resource)} for resource in results],
        "resultSetSize": len(results),
    }


def deep_offsets(params: Iterable[Mapping[str, str]]) -> list[int]:
    """The ``$offset``s beyond the first page among recorded request parameters."""
    return [int(p["$offset"]) for p in params if p.get("$offset", "0") not in ("", "0")]
