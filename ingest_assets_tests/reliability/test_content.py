"""Content byte for byte (#17): every value PostgreSQL can store arrives unchanged; one it cannot
store (a NUL byte, bytes invalid in the declared encoding, a number out of its type's range) is
refused naming dataset, year, column, row and value, or changed only where the catalog says so.

The table of cases and their errors is in docs/reliability.md; keep the two in step.
"""

from __future__ import annotations

import csv
from pathlib import Path

import psycopg
import pytest

from ingest_assets_tests.reliability.faults import year_checksum
from ingest_assets_tests.reliability.test_data_safety import (
    PETS_ID,
    SOCRATA,
    SOCRATA_COLUMNS,
    YEAR,
    files_config,
    materialize,
    socrata_rows,
)

pytestmark = pytest.mark.reliability

COLUMNS = {"id": "text", "note": "text", "amount": "double precision", "count": "integer"}
SPECIAL = {
    "backslashes": "C:\\path\\to\\file \\N \\\\ \\.",
    "tab": "a\tb",
    "newline": "line 1\nline 2",
    "carriage return": "a\rb and a\r\nc",
    "quotes": 'she said "hi" and \'bye\', ""',
    "delimiters": "a,b;c|d",
    "non-ASCII": "café ñandú 漢字 Ελληνικά 🙂 \u00a0nbsp",
    "padding": "  leading and trailing  ",
    "looks like NULL": "NULL",
    "2 MB": "x" * (2 << 20),
}


def write_csv(folder: Path, rows: list[list[str]], encoding="utf-8", bom=False) -> Path:
    path = folder / "data.csv"
    with path.open("w", newline="", encoding="utf-8-sig" if bom else encoding) as handle:
        writer = csv.writer(handle)
        writer.writerow(["year", *COLUMNS])
        writer.writerows(rows)
    return path


def table_notes(url: str, table: str, column: str, key: str) -> dict[str, str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"SELECT {key}, {column} FROM {table} WHERE year = %s", (YEAR,))
        return dict(rows.fetchall())


def error_of(result) -> str:
    [failure] = result.get_step_failure_events()
    return failure.step_failure_data.error.to_string()


def refused(result, url: str, before: tuple, tally) -> str:
    after = year_checksum(url, "safe_rows", YEAR) if before else None
    if before:
        tally.add("rows_lost", max(0, before[0] - after[0]))
    assert not result.success
    if before:
        assert after == before
    tally.add("bad_inputs")
    return error_of(result)


def test_every_storable_value_round_trips_through_the_files_source_exactly(
    instance, files_folder, warehouse_url
):
    write_csv(
        files_folder, [[YEAR, name, value, "1.5", "2"] for name, value in SPECIAL.items()], bom=True
    )
    result = materialize(instance, files_config(files_folder, columns=COLUMNS))
    assert result.success, error_of(result)
    assert table_notes(warehouse_url, "safe_rows", "note", "id") == SPECIAL


def test_every_storable_value_round_trips_through_socrata_json_exactly(
    instance,
    socrata,
    warehouse_url,
):
    rows = socrata_rows(len(SPECIAL), name=lambda i: list(SPECIAL.values())[i])
    socrata.add_dataset(PETS_ID, rows, SOCRATA_COLUMNS)
    result = materialize(instance, SOCRATA)
    assert result.success, error_of(result)
    loaded = table_notes(warehouse_url, "socrata_safe_rows", "name", "license")
    assert loaded == {row["license"]: row["name"] for row in rows}


def good_rows() -> list[list]:
    return [[YEAR, f"r{i}", f"note {i}", "1", "1"] for i in range(20)]


def _loaded_year(instance, folder: Path, url: str) -> tuple:
    write_csv(folder, good_rows())
    assert materialize(instance, files_config(folder, columns=COLUMNS)).success
    return year_checksum(url, "safe_rows", YEAR)


def refused_change(instance, folder: Path, url: str, tally, row: int, field: int, value) -> str:
    """Load 20 good rows, then the same file with one field of one row set to ``value``: the
    reload must be refused, the year unchanged; returns the error."""
    before = _loaded_year(instance, folder, url)
    rows = good_rows()
    rows[row][field] = value
    write_csv(folder, rows)
    result = materialize(instance, files_config(folder, columns=COLUMNS))
    return refused(result, url, before, tally)


def test_a_nul_byte_is_refused_naming_column_key_and_value_unless_stripped(
    instance, files_folder, warehouse_url, tally
):
    message = refused_change(instance, files_folder, warehouse_url, tally, 7, 2, "bad\x00value")
    assert f"dataset files_safe, year {YEAR}" in message
    assert "column 'note' holds a NUL byte" in message
    assert "'bad\\x00value' (key r7)" in message, message
    stripped = materialize(instance, files_config(files_folder, columns=COLUMNS, nul_bytes="strip"))
    assert stripped.success
    assert table_notes(warehouse_url, "safe_rows", "note", "id")["r7"] == "badvalue"


def test_a_nul_byte_in_socrata_json_is_refused(instance, socrata, warehouse_url, tally):
    socrata.add_dataset(PETS_ID, socrata_rows(5, name=lambda i: f"p\x00{i}"), SOCRATA_COLUMNS)
    message = refused(materialize(instance, SOCRATA), warehouse_url, (), tally)
    assert "dataset socrata_safe, year 2021" in message
    assert "column 'name' holds a NUL byte" in message and "'p\\x000' (key L0)" in message


def test_a_file_in_another_encoding_fails_naming_file_line_and_byte_until_declared(
    instance, files_folder, warehouse_url, tally
):
    before = _loaded_year(instance, files_folder, warehouse_url)
    rows = [[YEAR, f"r{i}", "plain", "1", "1"] for i in range(20)]
    rows[5][2] = "café"
    path = write_csv(files_folder, rows, encoding="latin-1")
    message = refused(
        materialize(instance, files_config(files_folder, columns=COLUMNS)),
        warehouse_url,
        before,
        tally,
    )
    offset = path.read_bytes().index(b"\xe9")
    assert f"file {path}: line 7, byte {offset:,} (b'\\xe9') is not valid utf-8 text" in message
    declared = materialize(
        instance, files_config(files_folder, columns=COLUMNS, encoding="latin-1")
    )
    assert declared.success
    assert table_notes(warehouse_url, "safe_rows", "note", "id")["r5"] == "café"


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("amount", "1e309", "column 'amount' (double precision) cannot hold '1e309': out of range"),
        ("amount", "-2e308", "column 'amount' (double precision) cannot hold '-2e308'"),
        ("count", "3000000000", "column 'count' (integer) cannot hold '3000000000'"),
    ],
)
def test_a_number_outside_its_type_is_refused_naming_column_and_value(
    instance, files_folder, warehouse_url, tally, column, value, expected
):
    position = 3 if column == "amount" else 4
    message = refused_change(instance, files_folder, warehouse_url, tally, 3, position, value)
    assert expected in message and "key 'r3'" in message, message


def test_a_written_infinity_is_stored_as_infinity(instance, files_folder, warehouse_url):
    write_csv(files_folder, [[YEAR, "r0", "n", "Infinity", "1"], [YEAR, "r1", "n", "-inf", "1"]])
    assert materialize(instance, files_config(files_folder, columns=COLUMNS)).success
    amounts = table_notes(warehouse_url, "safe_rows", "amount", "id")
    assert amounts == {"r0": float("inf"), "r1": float("-inf")}
