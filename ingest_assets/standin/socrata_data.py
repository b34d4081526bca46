"""The Socrata stand-in's data: portal CSV exports turned into API rows, and stored datasets.

Kept apart from the server so the recorded fixtures' field maps and the row storage can be read
(and tested) without the HTTP or SoQL code; the type families here are shared by both.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NamedTuple

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
    dropped_metadata: frozenset[str] = frozenset()

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


def _sort_key(data_type: str) -> Callable[[object], tuple[object, ...]]:
    """Sort key with nulls after every value (so last for ASC, first for DESC, as in SoQL)."""
    if _family(data_type) == "number":
        return lambda v: (1,) if v is None else (0, _decimal(v))
    return lambda v: (1,) if v is None else (0, v)
