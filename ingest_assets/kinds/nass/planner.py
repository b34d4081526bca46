"""The count-driven split planner: a Quick Stats year cut into pieces of at most 50,000 records.

Quick Stats refuses any request over 50,000 records (HTTP 413) and has no paging, so while a
piece is over the limit it is split along the next dimension (state → county → commodity → ...),
enumerating that dimension's values with ``get_param_values`` so the pieces cover the whole, and
checking that their counts add up. The planner only decides; the source makes the requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ingest_assets.errors import SourceError
from ingest_assets.kinds.base import Slice

RECORD_LIMIT = 50_000

Params = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class SplitPlanner:
    """Splits along ``dimensions`` in order, asking ``count`` and ``values`` of the source."""

    dimensions: Sequence[str]
    count: Callable[[Params], int]
    values: Callable[[str, Params], list[str]]
    what: Callable[[Params], str]

    def split(self, params: Params, count: int) -> list[Slice]:
        """Slices covering ``params`` (which holds ``count`` records), each within the limit."""
        return self._split(params, count, list(self.dimensions))

    def _split(self, params: Params, count: int, dims: list[str]) -> list[Slice]:
        if count <= RECORD_LIMIT:
            key = "/".join(f"{d}={params[d][0]}" for d in self.dimensions if d in params)
            return [Slice(key=key or "all", params=params, expected_rows=count)]
        if not dims:
            raise SourceError(
                f"{self.what(params)}: {count:,} records exceed the {RECORD_LIMIT:,} limit and "
                "no split dimension is left; add one to split_dimensions"
            )
        dimension, rest = dims[0], dims[1:]
        if dimension in params:
            return self._split(params, count, rest)
        slices: list[Slice] = []
        covered = 0
        for value in self.values(dimension, params):
            child = {**params, dimension: (value,)}
            child_count = self.count(child)
            covered += child_count
            if child_count:
                slices += self._split(child, child_count, rest)
        if covered != count:
            raise SourceError(
                f"{self.what(params)}: splitting by {dimension} covers {covered:,} of "
                f"{count:,} records; the pieces would not add up to the whole"
            )
        return slices
