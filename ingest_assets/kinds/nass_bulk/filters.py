"""A NASS ``query`` as one Arrow mask over a block of file rows, matching as the API does.

Matching is case-insensitive. Repeated values of a plain filter (a list) are alternatives; the
operator suffixes follow the API: ``__LIKE`` is a substring test (any of the values),
``__NOT_LIKE`` and ``__NE`` exclude every value, ``__LT``/``__LE``/``__GT``/``__GE`` compare
as text and must hold for every value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from ingest_assets.kinds.nass.config import QueryValue, split_operator

_COMPARE = {"LT": pc.less, "LE": pc.less_equal, "GT": pc.greater, "GE": pc.greater_equal}


def _any(masks: list[pa.Array]) -> pa.Array:
    result = masks[0]
    for mask in masks[1:]:
        result = pc.or_(result, mask)
    return result


def _all(masks: list[pa.Array]) -> pa.Array:
    result = masks[0]
    for mask in masks[1:]:
        result = pc.and_(result, mask)
    return result


def _test(op: str, column: pa.Array, values: list[str]) -> pa.Array:
    """The rows of one upper-cased ``column`` that one field/operator accepts."""
    if op == "EQ":
        return pc.is_in(column, value_set=pa.array(values, pa.string()))
    if op == "NE":
        return pc.invert(pc.is_in(column, value_set=pa.array(values, pa.string())))
    if op in ("LIKE", "NOT_LIKE"):
        found = _any([pc.match_substring(column, v) for v in values])
        return found if op == "LIKE" else pc.invert(found)
    return _all([_COMPARE[op](column, v) for v in values])


class RowFilter:
    """A compiled query; ``mask(batch, header_of)`` is True for the rows the API would return."""

    def __init__(self, query: Mapping[str, QueryValue]) -> None:
        grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name, value in query.items():
            values = value if isinstance(value, list) else [value]
            grouped[split_operator(name)] += [str(v).upper() for v in values]
        self._tests = dict(grouped)

    @property
    def fields(self) -> set[str]:
        """The fields the query reads."""
        return {field for field, _ in self._tests}

    def mask(self, column: Callable[[str], pa.Array], rows: int) -> pa.Array:
        """True per row when every filter accepts it; ``column(field)`` gives a field's values."""
        masks = [
            _test(op, pc.utf8_upper(column(field)), values)
            for (field, op), values in self._tests.items()
        ]
        return _all(masks) if masks else pa.array([True] * rows, pa.bool_())
