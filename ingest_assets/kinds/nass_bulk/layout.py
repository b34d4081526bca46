"""The bulk files' published shape: their names on the listing page and their header.

Shared by the source (which finds and reads the file) and the stand-in (which publishes one),
so both sides follow one description (reference §8).
"""

from __future__ import annotations

import re

from ingest_assets.kinds.nass.fields import FIELDS

SECTORS = ("crops", "animals_products", "economics", "demographics", "environmental")
CENSUS_FILES = tuple(f"census{year}" for year in (2002, 2007, 2012, 2017, 2022))

_MEASURE_HEADERS = {"Value": "VALUE", "CV (%)": "CV_%"}
HEADER_TO_FIELD: dict[str, str] = {_MEASURE_HEADERS.get(f, f.upper()): f for f in FIELDS}
"""The file's upper-case headers → the API's field names (``CV_%`` → ``CV (%)``)."""
HEADERS: tuple[str, ...] = tuple(HEADER_TO_FIELD)


def check_file(file: str) -> str:
    """Accept a sector or census file name, refusing anything the listing never holds."""
    if file not in SECTORS + CENSUS_FILES:
        known = ", ".join(SECTORS + CENSUS_FILES)
        raise ValueError(f"{file!r} is not a Quick Stats bulk file; use one of {known}")
    return file


def file_pattern(file: str) -> re.Pattern[str]:
    """The names the listing uses for ``file``: dated for a sector, fixed for a census."""
    dated = r"_(\d{8})" if file in SECTORS else r"()"
    return re.compile(rf"qs\.{re.escape(file)}{dated}\.txt\.gz")


def file_name(file: str, day: str) -> str:
    """The published name of ``file`` on ``day`` (YYYYMMDD; ignored for census files)."""
    return f"qs.{file}_{day}.txt.gz" if file in SECTORS else f"qs.{file}.txt.gz"
