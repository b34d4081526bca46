"""The catalog entry of a files dataset: a glob of delimited files and the column holding the year.

Files datasets are re-read whole on every run (there is no watermark in a folder of files), so
``mode: incremental`` is refused when the catalog loads.
"""

from __future__ import annotations

import codecs
from typing import Any, Literal

from pydantic import Field, field_validator

from ingest_assets.kinds.typed import TypedDatasetConfig


class FilesDatasetConfig(TypedDatasetConfig):
    """A folder (glob) of delimited files; every run reads them afresh and replaces the year."""

    source: Literal["files"] = Field(description="`files`.")
    path: str = Field(description="Glob of the files: a local path or an fsspec URL.")
    year_column: str = Field(description="Header whose leading four digits are the row's year.")
    delimiter: str | None = Field(
        None, min_length=1, max_length=1, description="Default: tab for .tsv/.tab, else comma."
    )
    encoding: str = Field(
        "utf-8",
        description="The files' text encoding (a Python codec name); bytes invalid in it fail "
        "naming file, line and byte. A UTF-8 byte order mark is never part of the first header.",
    )
    chunk_rows: int = Field(100_000, ge=1, description="Most rows per staged page.")

    @property
    def filters(self) -> dict[str, Any]:
        return {"path": self.path, "year_column": self.year_column}

    @property
    def page_format(self) -> str:
        return "csv"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, name: str) -> str:
        try:
            return codecs.lookup(name).name
        except LookupError:
            raise ValueError(f"unknown encoding {name!r}") from None

    @field_validator("mode")
    @classmethod
    def _full_only(cls, mode: str) -> str:
        if mode != "full":
            raise ValueError("files datasets load in mode 'full' only (each year is re-read)")
        return mode
