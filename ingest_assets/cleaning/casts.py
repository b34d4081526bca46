"""Casts from API strings to a column's type, shared by every kind's cleaner.

APIs send numbers with thousands separators, blanks for "not applicable", dates written as
timestamps; these casts absorb that once, and when a value still does not fit they fail with the
column, the value and its row, never silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.cleaning.columns import Column
from ingest_assets.errors import CleaningError

_INFINITY = r"(?i)^[+-]?inf(inity)?$"


def blank_to_null(values: pa.Array) -> pa.Array:
    """Trim strings and turn empty ones into nulls (APIs send "" for not applicable)."""
    trimmed = pc.utf8_trim_whitespace(values)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def cast_column(
    values: pa.Array,
    column: Column,
    where: str,
    keys: pa.Array | None = None,
    null_on_error: bool = False,
) -> pa.Array:
    """Cast strings to the column's type; on failure name the column, the value and its row.

    With ``null_on_error`` a value that does not parse becomes NULL instead (the catalog's
    ``null_on_error`` list); the rest of the column is still cast normally.
    """
    target = column.arrow_type
    if values.type == target:
        return values
    if pa.types.is_string(values.type) and not pa.types.is_string(target):
        values = blank_to_null(values)
        if pa.types.is_floating(target) or pa.types.is_integer(target):
            values = pc.replace_substring(values, ",", "")
        if pa.types.is_boolean(target):
            values = pc.utf8_lower(values)
    try:
        cast = _cast(values, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if null_on_error:
            return pa.array(
                [_cast_or_none(v, values.type, target) for v in values.to_pylist()], target
            )
        raise CleaningError(_explain(values, column, where, keys)) from None
    if pa.types.is_floating(target) and pa.types.is_string(values.type):
        _refuse_overflow(values, cast, column, where, keys)
    return cast


def _refuse_overflow(
    text: pa.Array, cast: pa.Array, column: Column, where: str, keys: pa.Array | None
) -> None:
    """A number too large for the column parses as infinity; only a written infinity may."""
    infinite = pc.is_inf(cast)
    if not pc.any(infinite).as_py():  # the common case costs one pass over the numbers
        return
    overflow = pc.and_(infinite, pc.invert(pc.match_substring_regex(text, _INFINITY)))
    if pc.any(overflow).as_py():
        index = pc.index(overflow, True).as_py()
        raise CleaningError(
            f"{where}: column {column.name!r} ({column.pg_type}) cannot hold "
            f"{text[index].as_py()!r}: out of range ({_row(keys, index)})"
        )


def _row(keys: pa.Array | None, index: int) -> str:
    return f"key {keys[index].as_py()!r}" if keys is not None else f"row {index}"


def _cast(values: pa.Array, target: pa.DataType) -> pa.Array:
    """``pc.cast``, plus dates written as timestamps ("2015-12-18T00:00:00.000", as Socrata
    sends calendar dates), which Arrow only casts to a date by way of a timestamp.
    """
    if (
        pa.types.is_date(target)
        and pa.types.is_string(values.type)
        and pc.any(pc.match_substring(values, "T")).as_py()
    ):
        return pc.cast(pc.cast(values, pa.timestamp("us")), target)
    return pc.cast(values, target)


def _cast_or_none(value: object, source: pa.DataType, target: pa.DataType) -> object:
    if value is None:
        return None
    try:
        return _cast(pa.array([value], source), target)[0].as_py()
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _explain(values: pa.Array, column: Column, where: str, keys: pa.Array | None) -> str:
    for index, value in enumerate(values.to_pylist()):
        if value is None:
            continue
        try:
            _cast(pa.array([value], values.type), column.arrow_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return (
                f"{where}: column {column.name!r} ({column.pg_type}) cannot hold {value!r} "
                f"({_row(keys, index)})"
            )
    return f"{where}: column {column.name!r} could not be cast to {column.pg_type}"


def strings(records: Sequence[dict], field: str) -> pa.Array:
    """One field of every record as a string array; absent keys and nulls become null.

    Objects and lists (Socrata ``location``, ``url`` ...) become JSON text, not Python reprs.
    """
    values = [r.get(field) for r in records]
    try:
        return pa.array(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([_text(v) for v in values], pa.string())


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value).lower() if isinstance(value, bool) else str(value)
