"""A local stand-in for the Socrata SODA 2.1 API, for tests and the offline demo.

It serves ``GET /resource/{id}.json`` (a practical SoQL subset) and ``GET /api/views/{id}.json``
over real sockets, with the quirks an ingester has to survive: a default ``$limit`` of 1000,
row order that changes between requests when no ``$order`` is given, every value a string,
nulls omitted, ``count(*)`` answered as a string, ``rowsUpdatedAt`` missing from metadata on
some portals, app-token checks, and injectable faults (throttling, 5xx, resets, truncation,
slowness, HTML pages, row counts that drift during paging). Tests change the data between
requests with ``replace_rows`` / ``upsert_rows`` / ``delete_rows``.

It also turns portal CSV exports (display-name headers, US timestamps) into API-style rows,
so the recorded fixtures can be served as the real API would serve them.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import operator
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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.utils import formatdate
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qsl, urlsplit

import orjson

from ingest_assets.standin.http import (
    COMMON_FAULTS,
    FaultQueue,
    RequestStats,
    ServedStandIn,
    TrackedHandler,
)

Row = dict[str, object]

DEFAULT_LIMIT = 1000
SYSTEM_FIELDS = {
    ":id": "meta_data",
    ":created_at": "fixed_timestamp",
    ":updated_at": "fixed_timestamp",
}
# Metadata says calendar_date/date/checkbox where the X-SODA2-Types header says these.
_HEADER_TYPES = {
    "calendar_date": "floating_timestamp",
    "date": "fixed_timestamp",
    "checkbox": "boolean",
}
_NUMBER_TYPES = {"number", "money", "percent", "double"}
_FLOATING_TYPES = {"calendar_date", "floating_timestamp"}
_BOOLEAN_TYPES = {"checkbox", "boolean"}
_TEXT_TYPES = {"text", "date", "fixed_timestamp", "meta_data"}
_OBJECT_TYPES = {"location", "point", "url", "document", "photo"}


# --- portal CSV exports -> API rows ------------------------------------------------------------


class Field(NamedTuple):
    """One API column a portal CSV header maps to: its field name and Socrata dataTypeName."""

    name: str
    data_type: str = "text"


_LA311_TYPES = {
    "createddate": "calendar_date",
    "updateddate": "calendar_date",
    "servicedate": "calendar_date",
    "closeddate": "calendar_date",
    "latitude": "number",
    "longitude": "number",
    "cd": "number",
    "nc": "number",
    "location": "location",
}
# MyLA311 2017: API field names are the lower-cased portal headers; the rest are text.
LA311_2017_FIELDS: dict[str, Field] = {
    header: Field(header.lower(), _LA311_TYPES.get(header.lower(), "text"))
    for header in (
        "SRNumber", "CreatedDate", "UpdatedDate", "ActionTaken", "Owner", "RequestType", "Status",
        "RequestSource", "MobileOS", "Anonymous", "AssignTo", "ServiceDate", "ClosedDate",
        "AddressVerified", "ApproximateAddress", "Address", "HouseNumber", "Direction",
        "StreetName", "Suffix", "ZipCode", "Latitude", "Longitude", "Location", "TBMPage",
        "TBMColumn", "TBMRow", "APC", "CD", "CDMember", "NC", "NCName", "PolicePrecinct",
    )
}  # fmt: skip

SEATTLE_PET_LICENSE_FIELDS: dict[str, Field] = {
    "License Issue Date": Field("license_issue_date", "calendar_date"),
    "License Number": Field("license_number"),
    "Animal's Name": Field("animal_s_name"),
    "Species": Field("species"),
    "Primary Breed": Field("primary_breed"),
    "Secondary Breed": Field("secondary_breed"),
    "ZIP Code": Field("zip_code"),
}

# Portal exports write "12/31/2017 11:59:58 PM" (LA 311) or "December 18 2015" (Seattle).
_US_TIMESTAMP = re.compile(r"(\d{2})/(\d{2})/(\d{4}) (\d{2}):(\d{2}):(\d{2}) ([AP]M)")
_US_DATE = re.compile(r"([A-Z][a-z]+) (\d{1,2}) (\d{4})")
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("January", "February", "March", "April", "May", "June", "July", "August",
         "September", "October", "November", "December"),
        1,
    )
}  # fmt: skip
_PORTAL_LOCATION = re.compile(r"\(\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\)")


def columns_of(field_map: Mapping[str, Field]) -> dict[str, str]:
    """The ``columns`` argument of ``add_dataset`` for rows loaded with ``field_map``."""
    return {f.name: f.data_type for f in field_map.values()}


def rows_from_portal_csv(path: Path | str, field_map: Mapping[str, Field]) -> list[Row]:
    """Read a portal CSV export (``.csv`` or ``.csv.gz``, BOM tolerated) into API-style rows.

    Only headers in ``field_map`` are kept, renamed to their API field names. Values stay
    strings, timestamps become floating ISO strings, ``location`` values become location
    objects, and empty values are left out of the row (the API omits nulls).
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        headers = next(reader, [])
        missing = set(field_map) - set(headers)
        if missing:
            raise ValueError(f"{path}: headers not found: {sorted(missing)}")
        plan = [
            (headers.index(header), f.name, _PORTAL_CONVERTERS.get(f.data_type, str))
            for header, f in field_map.items()
        ]
        return [
            {name: convert(record[index]) for index, name, convert in plan if record[index]}
            for record in reader
        ]


def _portal_timestamp(raw: str) -> str:
    """A portal timestamp as a floating ISO string (regexes: strptime is 10x slower)."""
    if match := _US_TIMESTAMP.fullmatch(raw):
        month, day, year, hour, minute, second = map(int, match.groups()[:6])
        hour = hour % 12 + (12 if match[7] == "PM" else 0)
        stamp = datetime(year, month, day, hour, minute, second)
    elif (match := _US_DATE.fullmatch(raw)) and match[1] in _MONTHS:
        stamp = datetime(int(match[3]), _MONTHS[match[1]], int(match[2]))
    else:
        raise ValueError(f"unrecognised portal timestamp: {raw!r}")
    return stamp.isoformat(timespec="milliseconds")


def _portal_location(raw: str) -> dict[str, str]:
    """``"(34.07, -118.26)"`` as a SODA location object."""
    match = _PORTAL_LOCATION.fullmatch(raw)
    if match is None:
        raise ValueError(f"unrecognised portal location: {raw!r}")
    return {"latitude": match[1], "longitude": match[2]}


_PORTAL_CONVERTERS: dict[str, Callable[[str], object]] = {
    "calendar_date": _portal_timestamp,
    "floating_timestamp": _portal_timestamp,
    "location": _portal_location,
}


# --- SoQL: tokens, errors, expressions ---------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # "string" | "number" | "ident" | "op" | "end"
    value: str
    pos: int  # 0-based offset in the parameter text


_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<string>'(?:[^']|'')*')"
    r"|(?P<number>\d+(?:\.\d+)?)"
    r"|(?P<ident>:?@?[A-Za-z_][A-Za-z0-9_]*|`[^`]+`)"
    r"|(?P<op><>|!=|>=|<=|=|<|>|\(|\)|,|:\*|\*|-)"
)


class _QueryError(Exception):
    """A SoQL error, carrying the status and JSON body the real API would answer with."""

    def __init__(self, body: dict[str, object], status: int = 400) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _malformed(text: str, pos: int) -> _QueryError:
    # Parse errors use the key "code"; semantic errors use "errorCode".
    return _QueryError(
        {
            "code": "query.compiler.malformed",
            "error": True,
            "message": f'Could not parse SoQL query "{text}" at line 1 character {pos + 1}',
            "data": {"query": text, "position": {"line": 1, "column": pos + 1}},
        }
    )


def _semantic(code: str, detail: str, text: str, pos: int, **data: object) -> _QueryError:
    where = f'Map(row -> 1, column -> {pos + 1}, line -> "{text}")'
    return _QueryError(
        {
            "message": f"Query coordinator error: {code}; {detail}; position: {where}",
            "errorCode": code,
            "data": {**data, "position": {"row": 1, "column": pos + 1, "line": text}},
        }
    )


def _unsupported(what: str) -> _QueryError:
    return _QueryError({"error": True, "message": f"Not supported by the Socrata stand-in: {what}"})


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise _malformed(text, pos)
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "string":
            tokens.append(_Token(kind, value[1:-1].replace("''", "'"), pos))
        elif kind == "ident":
            tokens.append(_Token(kind, value.strip("`"), pos))
        elif kind != "ws":
            tokens.append(_Token(kind, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


_NOT_CONSTANT = object()


@dataclass(frozen=True)
class _Expr:
    """A compiled expression: how to evaluate it on a row, and its type family."""

    evaluate: Callable[[Row], object]
    family: str  # "text" | "number" | "floating" | "boolean" | "object" | "null"
    constant: object = _NOT_CONSTANT


def _family(data_type: str) -> str:
    if data_type in _NUMBER_TYPES:
        return "number"
    if data_type in _FLOATING_TYPES:
        return "floating"
    if data_type in _BOOLEAN_TYPES:
        return "boolean"
    if data_type in _TEXT_TYPES:
        return "text"
    return "object"


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


_FLOATING_LITERAL = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?))?"
)


def _floating_literal(text: str) -> str | None:
    """Pad a date/time literal to the stored form ``YYYY-MM-DDTHH:MM:SS.fff``."""
    match = _FLOATING_LITERAL.fullmatch(text)
    if match is None:
        return None
    clock = match[2] or "00:00"
    clock += ":00" if len(clock) == 5 else ""
    clock += ".000" if "." not in clock else "000"[: 12 - len(clock)]
    return f"{match[1]}T{clock}"


_COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_DATE_PARTS = {
    "date_extract_y": slice(0, 4),
    "date_extract_m": slice(5, 7),
    "date_extract_d": slice(8, 10),
}
_AGGREGATES = {"count", "min", "max"}


def _junction(items: Sequence[_Expr], decisive: bool) -> _Expr:
    """AND (``decisive=False``) or OR (``decisive=True``) with SQL's three-valued logic."""

    def evaluate(row: Row) -> object:
        result: bool | None = not decisive
        for item in items:
            value = item.evaluate(row)
            if value is decisive:
                return decisive
            if value is None:
                result = None
        return result

    return _Expr(evaluate, "boolean")


def _not(item: _Expr) -> _Expr:
    def evaluate(row: Row) -> object:
        value = item.evaluate(row)
        return None if value is None else not value

    return _Expr(evaluate, "boolean")


def _literal(value: object, family: str) -> _Expr:
    return _Expr(lambda _row: value, family, value)


class _Parser:
    """Recursive-descent SoQL parser for one parameter, compiling against a dataset schema.

    Parse errors are raised at once; the first semantic error (unknown column, type
    mismatch, ...) is raised only after the whole text parsed, as the real API reports them.
    """

    def __init__(self, text: str, schema: Mapping[str, str], dataset: str) -> None:
        self.text = text
        self.schema = schema
        self.dataset = dataset
        self.tokens = _tokenize(text)
        self.index = 0
        self.semantic_error: _QueryError | None = None

    # token helpers
    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "ident" and token.value.upper() == word:
            self.index += 1
            return True
        return False

    def op(self, value: str) -> bool:
        token = self.peek()
        if token.kind == "op" and token.value == value:
            self.index += 1
            return True
        return False

    def expect_op(self, op: str) -> None:
        if not self.op(op):
            raise _malformed(self.text, self.peek().pos)

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise _malformed(self.text, self.peek().pos)
        if self.semantic_error is not None:
            raise self.semantic_error

    def fail(self, error: _QueryError) -> _Expr:
        """Remember the first semantic error; parsing goes on with a null in its place."""
        self.semantic_error = self.semantic_error or error
        return _literal(None, "null")

    def column(self, token: _Token) -> tuple[str, str] | None:
        """(name, dataTypeName) of a column reference, recording no-such-column if unknown."""
        if token.value in self.schema:
            return token.value, self.schema[token.value]
        self.fail(
            _semantic(
                "query.soql.no-such-column",
                f"No such column: {token.value}",
                self.text,
                token.pos,
                column=token.value,
                dataset=f"alpha.{self.dataset}",
            )
        )
        return None

    def mismatch(self, token: _Token, *families: str) -> _Expr:
        return self.fail(
            _semantic(
                "query.soql.type-mismatch",
                f"Type mismatch for {token.value}, is {'/'.join(families)}",
                self.text,
                token.pos,
                name=token.value,
                dataset=f"alpha.{self.dataset}",
            )
        )

    # $where
    def condition(self) -> _Expr:
        start = self.peek()
        expr = self.disjunction()
        self.expect_end()
        if expr.family not in ("boolean", "null"):
            raise _semantic(
                "query.soql.type-mismatch",
                f"$where must be boolean, is {expr.family}",
                self.text,
                start.pos,
                dataset=f"alpha.{self.dataset}",
            )
        return expr

    def disjunction(self) -> _Expr:
        items = [self.conjunction()]
        while self.keyword("OR"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else _junction(items, decisive=True)

    def conjunction(self) -> _Expr:
        items = [self.negation()]
        while self.keyword("AND"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else _junction(items, decisive=False)

    def negation(self) -> _Expr:
        return _not(self.negation()) if self.keyword("NOT") else self.predicate()

    def predicate(self) -> _Expr:
        left = self.operand()
        token = self.peek()
        if token.kind == "op" and token.value in _COMPARISONS:
            self.index += 1
            return self.compare(token, left, self.operand())
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                raise _malformed(self.text, self.peek().pos)
            return _Expr(lambda row: (left.evaluate(row) is None) != negated, "boolean")
        negated = self.keyword("NOT")
        token = self.peek()
        if self.keyword("BETWEEN"):
            low = self.operand()
            if not self.keyword("AND"):
                raise _malformed(self.text, self.peek().pos)
            high = self.operand()
            ge, le = token._replace(value=">="), token._replace(value="<=")
            expr = _junction(
                [self.compare(ge, left, low), self.compare(le, left, high)], decisive=False
            )
        elif self.keyword("IN"):
            self.expect_op("(")
            options = [self.operand()]
            while self.op(","):
                options.append(self.operand())
            self.expect_op(")")
            eq = token._replace(value="=")
            expr = _junction([self.compare(eq, left, option) for option in options], decisive=True)
        elif self.keyword("LIKE"):
            expr = self.like(token, left, self.operand())
        elif negated:
            raise _malformed(self.text, self.peek().pos)
        else:
            return left
        return _not(expr) if negated else expr

    def operand(self) -> _Expr:
        token = self.take()
        if token.kind == "op" and token.value == "(":
            expr = self.disjunction()
            self.expect_op(")")
            return expr
        if token.kind == "op" and token.value == "-" and self.peek().kind == "number":
            return _literal(-Decimal(self.take().value), "number")
        if token.kind == "string":
            return _literal(token.value, "text")
        if token.kind == "number":
            return _literal(Decimal(token.value), "number")
        if token.kind != "ident":
            raise _malformed(self.text, token.pos)
        word = token.value.upper()
        if word in ("TRUE", "FALSE"):
            return _literal(word == "TRUE", "boolean")
        if word == "NULL":
            return _literal(None, "null")
        if self.op("("):
            return self.call(token)
        column = self.column(token)
        if column is None:
            return _literal(None, "null")
        name, data_type = column
        family = _family(data_type)
        if family == "number":
            return _Expr(lambda row: _decimal(row.get(name)), family)
        return _Expr(lambda row: row.get(name), family)

    def call(self, token: _Token) -> _Expr:
        name = token.value.lower()
        argument = _literal(None, "null") if self.op("*") else self.operand()
        self.expect_op(")")
        if name in _AGGREGATES:
            return self.fail(
                _semantic(
                    "query.soql.aggregate-in-ungrouped-context",
                    f"Aggregate function {name} in ungrouped context",
                    self.text,
                    token.pos,
                    dataset=f"alpha.{self.dataset}",
                )
            )
        if name not in _DATE_PARTS:
            return self.fail(
                _semantic(
                    "query.soql.no-such-function",
                    f"No such function: {name}",
                    self.text,
                    token.pos,
                    name=name,
                    dataset=f"alpha.{self.dataset}",
                )
            )
        if argument.family not in ("floating", "null"):
            return self.mismatch(token, argument.family)
        part = _DATE_PARTS[name]

        def evaluate(row: Row) -> object:
            value = argument.evaluate(row)
            return None if value is None else Decimal(str(value)[part])

        return _Expr(evaluate, "number")

    @staticmethod
    def coerce(target: str, literal: _Expr) -> _Expr | None:
        """A text literal converted to ``target``'s family, or None when it cannot be."""
        if literal.family != "text" or literal.constant is _NOT_CONSTANT:
            return None
        text = str(literal.constant)
        if target == "number":
            converted: object = _decimal(text)
        elif target == "floating":
            converted = _floating_literal(text)
        else:
            return None
        return None if converted is None else _literal(converted, target)

    def compare(self, token: _Token, left: _Expr, right: _Expr) -> _Expr:
        """``left <op> right``; a text literal is read as the other side's number or timestamp."""
        if "null" not in (left.family, right.family) and left.family != right.family:
            coerced_right = self.coerce(left.family, right)
            coerced_left = self.coerce(right.family, left)
            if coerced_right is not None:
                right = coerced_right
            elif coerced_left is not None:
                left = coerced_left
            else:
                return self.mismatch(token, left.family, right.family)
        if "object" in (left.family, right.family):
            return self.mismatch(token, "object")
        test = _COMPARISONS[token.value]

        def evaluate(row: Row) -> object:
            a, b = left.evaluate(row), right.evaluate(row)
            return None if a is None or b is None else test(a, b)

        return _Expr(evaluate, "boolean")

    def like(self, token: _Token, left: _Expr, pattern: _Expr) -> _Expr:
        if left.family != "text" or pattern.constant is _NOT_CONSTANT:
            return self.mismatch(token, left.family)
        regex = re.compile(
            "".join(
                ".*" if c == "%" else "." if c == "_" else re.escape(c)
                for c in str(pattern.constant)
            ),
            re.DOTALL,
        )

        def evaluate(row: Row) -> object:
            value = left.evaluate(row)
            return None if value is None else regex.fullmatch(str(value)) is not None

        return _Expr(evaluate, "boolean")

    # $select
    def selection(self) -> list[_SelectItem]:
        items: list[_SelectItem] = []
        while True:
            items.extend(self.select_item())
            if not self.op(","):
                break
        self.expect_end()
        if any(item.aggregate for item in items) and not all(item.aggregate for item in items):
            plain = next(item for item in items if not item.aggregate)
            raise _semantic(
                "query.soql.column-not-in-group-bys",
                f"Column not in group bys: {plain.source}",
                self.text,
                self.text.find(plain.source),
                dataset=f"alpha.{self.dataset}",
            )
        return items

    def select_item(self) -> list[_SelectItem]:
        token = self.take()
        if token.kind == "op" and token.value in ("*", ":*"):
            system = token.value == ":*"
            names = [name for name in self.schema if (name in SYSTEM_FIELDS) == system]
            return [_SelectItem(name, name, self.schema[name]) for name in names]
        if token.kind != "ident":
            raise _malformed(self.text, token.pos)
        if self.op("("):
            item = self.aggregate(token)
        else:
            column = self.column(token)
            item = _SelectItem(token.value, token.value, column[1] if column else "text")
        if self.keyword("AS"):
            alias = self.take()
            if alias.kind != "ident":
                raise _malformed(self.text, alias.pos)
            item = item._replace(output=alias.value)
        return [item]

    def aggregate(self, token: _Token) -> _SelectItem:
        name = token.value.lower()
        argument = self.take()
        self.expect_op(")")
        if name not in _AGGREGATES:
            raise _unsupported(f"function {name} in $select")
        if argument.kind == "op" and argument.value == "*" and name == "count":
            return _SelectItem("count", "*", "number", "count")
        if argument.kind != "ident":
            raise _malformed(self.text, argument.pos)
        column = self.column(argument)
        data_type = "number" if name == "count" or column is None else column[1]
        if _family(data_type) == "object":
            self.mismatch(token, "object")
        return _SelectItem(f"{name}_{argument.value}", argument.value, data_type, name)

    # $order
    def ordering(self) -> list[tuple[str, str, bool]]:
        keys = []
        while True:
            token = self.take()
            if token.kind != "ident":
                raise _malformed(self.text, token.pos)
            column = self.column(token)
            descending = self.keyword("DESC")
            if not descending:
                self.keyword("ASC")
            if column is not None and _family(column[1]) == "object":
                self.mismatch(token, "object")
            elif column is not None:
                keys.append((*column, descending))
            if not self.op(","):
                break
        self.expect_end()
        return keys


class _SelectItem(NamedTuple):
    output: str
    source: str  # column name, or "*" for count(*)
    data_type: str
    aggregate: str | None = None


# --- datasets ----------------------------------------------------------------------------------


@dataclass
class _Dataset:
    dataset_id: str
    name: str
    columns: dict[str, str]
    row_identifier: str | None
    created_at: int
    rows: list[Row] = field(default_factory=list)
    rows_updated_at: int = 0
    view_last_modified: int = 0
    drop_rows_updated_at: bool = False

    @property
    def schema(self) -> dict[str, str]:
        return {**self.columns, **SYSTEM_FIELDS}


def _stored_value(value: object, data_type: str) -> object:
    """A value as the API serialises it: strings, except booleans and object types."""
    if data_type in _BOOLEAN_TYPES:
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value if isinstance(value, str) or data_type in _OBJECT_TYPES else str(value)


def _fixed_timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _sort_key(data_type: str) -> Callable[[object], tuple[object, ...]]:
    """Sort key with nulls after every value (so last for ASC, first for DESC, as in SoQL)."""
    if _family(data_type) == "number":
        return lambda v: (1,) if v is None else (0, _decimal(v))
    return lambda v: (1,) if v is None else (0, v)


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


def _rows_body(rows: Iterable[Row]) -> bytes:
    """Rows laid out as SODA 2.1 does: ``[{...}\\n,{...}]\\n``."""
    return b"[" + b"\n,".join(orjson.dumps(row) for row in rows) + b"]\n"


# --- the server --------------------------------------------------------------------------------


class _Handler(TrackedHandler):
    def do_GET(self) -> None:
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
        endpoint, dataset_id = _route(url.path)
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
                endpoint, dataset_id, params, token, request_number
            )
            handler.send(response, truncate=fault == "truncate")
        finally:
            self._stats.finished()

    def _answer(
        self,
        endpoint: str,
        dataset_id: str,
        params: dict[str, str],
        token: str | None,
        request_number: int,
    ) -> _Response:
        if self._app_token is not None and token is not None and token != self._app_token:
            return _json_response(403, {"message": "Invalid app_token specified", "error": True})
        if endpoint == "other":
            return _json_response(404, {"error": True, "message": "Not found"})
        with self._lock:
            dataset = self._datasets.get(dataset_id)
            # Rows are replaced, never changed in place, so a shallow copy is a snapshot.
            snapshot = None if dataset is None else replace(dataset, rows=list(dataset.rows))
        if snapshot is None:
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
        if endpoint == "views":
            return _json_response(200, _metadata(snapshot))
        try:
            return self._query(snapshot, params, request_number)
        except _QueryError as error:
            return _json_response(error.status, error.body)

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
                matched.sort(key=lambda row, n=name, k=key: k(row.get(n)), reverse=descending)
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


def _route(path: str) -> tuple[str, str]:
    """(endpoint, dataset id) for a request path."""
    match = re.fullmatch(r"/resource/([^/]+)\.json", path)
    if match:
        return "resource", match[1]
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
    return document


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
