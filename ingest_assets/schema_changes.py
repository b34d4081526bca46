"""Source fields that appeared or vanished, handled as the catalog's ``on_schema_change`` says.

Why a module of its own: the change is found while cleaning (in the staged pages) but acted on
while loading (new table columns), two assets apart. Here: comparing the fields a year's staged
pages hold with those the kind expects, naming the columns that fields become, and carrying both
lists to the facts asset in the cleaned Parquet's schema metadata, the one thing both assets
share. Under ``fail`` nothing is looked for here: the kinds refuse drift themselves, by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from ingest_assets.cleaning.columns import Column
from ingest_assets.errors import CleaningError
from ingest_assets.kinds.base import IDENTIFIER, Cleaner, DatasetConfig
from ingest_assets.staging.pages import StagedPages

_ADDED = b"ingest/added_fields"
_MISSING = b"ingest/missing_fields"


@dataclass(frozen=True)
class FieldChanges:
    """Fields a year's pages hold beyond the expected ones, and expected ones they lack."""

    added: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()

    def schema_metadata(self) -> dict[bytes, bytes]:
        return {_ADDED: ",".join(self.added).encode(), _MISSING: ",".join(self.missing).encode()}

    @classmethod
    def of_schema(cls, schema: pa.Schema) -> FieldChanges:
        """The changes a cleaned Parquet file was written with (none for files without them)."""
        metadata = schema.metadata or {}
        added, missing = (metadata.get(key, b"").decode() for key in (_ADDED, _MISSING))
        return cls(tuple(filter(None, added.split(","))), tuple(filter(None, missing.split(","))))

    def added_columns(self) -> tuple[Column, ...]:
        """A new field's column: nullable text, named as the field."""
        return tuple(Column(name, "text") for name in self.added)


def evolving(config: DatasetConfig) -> bool:
    """Whether the catalog lets this dataset's table gain columns (``add_columns``)."""
    return config.on_schema_change == "add_columns"


def field_changes(cleaner: Cleaner, staged: StagedPages) -> FieldChanges:
    """Compare the fields of every staged page of the year with the kind's expected fields."""
    seen: set[str] = set()
    for _, body in staged.bodies():
        seen |= cleaner.page_fields(body)
    expected = set(cleaner.expected_fields())
    taken = {column.name for column in cleaner.base_columns()}
    added = sorted(seen - expected)
    where = f"dataset {cleaner.config.name}, year {staged.year}"
    for name in added:
        if not IDENTIFIER.fullmatch(name) or name in taken:
            reason = "is already a column" if name in taken else "is not a valid column name"
            raise CleaningError(f"{where}: new source field {name!r} {reason}; rename it at source")
    missing = sorted(expected - seen) if seen else []
    return FieldChanges(tuple(added), tuple(missing))


def year_cleaner(
    make: Callable[..., Cleaner], config: DatasetConfig, staged: StagedPages
) -> tuple[Cleaner, FieldChanges]:
    """The cleaner of one year, knowing the fields its pages added (``add_columns`` only)."""
    if not evolving(config):
        return make(config), FieldChanges()
    changes = field_changes(make(config), staged)
    return make(config, changes.added), changes
