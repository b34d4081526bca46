"""The files kind: a folder of gzip CSVs (and TSVs) by year, chunked reading, reloads."""

import csv
import gzip
from datetime import datetime

import dagster as dg
import psycopg
import pytest

from ingest_assets.dataset import RECONCILE_CHECK, dataset_assets
from ingest_assets.errors import SourceError
from ingest_assets.kinds.files.config import FilesDatasetConfig
from ingest_assets.kinds.files.source import FilesSource
from ingest_assets.resources import build_resources
from ingest_assets.settings import ExplicitSettings

HEADERS = ["Year", "State Code", "Commodity", "Value", "Load Time"]


def write_gz(path, rows, delimiter=","):
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(HEADERS)
        writer.writerows(rows)


def rows_for(year: int, n: int, offset: int = 0) -> list[list[str]]:
    return [
        [str(year), f"{(i + offset) % 56:02d}", f"C{i % 7}", f"{i * 1.5:,.1f}" if i % 9 else "",
         f"{year}-03-01 10:00:00"]
        for i in range(n)
    ]  # fmt: skip


def config(folder, **fields) -> FilesDatasetConfig:
    return FilesDatasetConfig(
        name="bulk_t",
        source="files",
        table="bulk",
        start_year=2018,
        end_year=2021,
        path=f"{folder}/*.csv.gz",
        year_column="Year",
        columns={
            "state_code": "text",
            "commodity": "text",
            "value": "double precision",
            "load_time": "timestamp",
        },
        **fields,
    )


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "dump"
    data.mkdir()
    write_gz(data / "a.csv.gz", rows_for(2019, 1_200) + rows_for(2020, 300))
    write_gz(data / "b.csv.gz", rows_for(2020, 800, offset=5))
    (data / "ignored.txt").write_text("not matched by the glob")
    return data


def test_reading_is_chunked_into_pages_of_bounded_rows(folder):
    source = FilesSource(config(folder, chunk_rows=250))
    plan = source.plan(2020)
    assert plan.source_count == 1_100
    assert [(s.key.rsplit("/", 1)[-1], s.expected_rows) for s in plan.slices] == [
        ("a.csv.gz", 300),
        ("b.csv.gz", 800),
    ]
    pages = [page for part in plan.slices for page in source.fetch(part)]
    assert max(p.rows for p in pages) <= 250
    assert [p.rows for p in pages] == [250, 50, 250, 250, 250, 50]
    assert sum(p.rows for p in pages) == 1_100


def test_a_year_value_without_a_year_fails_naming_file_and_value(folder):
    write_gz(folder / "c.csv.gz", [["n/a", "01", "C1", "1", "2020-01-01 00:00:00"]])
    with pytest.raises(SourceError, match=r"c\.csv\.gz: year column 'Year' holds 'n/a'"):
        FilesSource(config(folder)).plan(2020)


def test_tab_separated_files_are_read_too(tmp_path):
    write_gz(tmp_path / "x.tsv.gz", rows_for(2018, 40), delimiter="\t")
    source = FilesSource(config(tmp_path).model_copy(update={"path": f"{tmp_path}/*.tsv.gz"}))
    assert source.plan(2018).source_count == 40


def table_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT year, state_code, commodity, value, load_time FROM bulk ORDER BY 1, 2, 3, 4"
        ).fetchall()


def test_a_folder_loads_by_year_and_a_reload_leaves_the_table_identical(
    folder, instance, warehouse_url, tmp_path
):
    assets = dataset_assets(config(folder, chunk_rows=500))
    staging = str(tmp_path / "staging")
    settings = ExplicitSettings(database_url=warehouse_url, ingest_staging=staging)
    resources = build_resources(settings)
    for year in (2019, 2020):
        result = dg.materialize(assets, partition_key=str(year), resources=resources,
                                instance=instance)  # fmt: skip
        [check] = [
            c for c in result.get_asset_check_evaluations() if c.check_name == RECONCILE_CHECK
        ]
        assert check.check_name == RECONCILE_CHECK and check.passed
    first = table_rows(warehouse_url)
    counts = {}
    for row in first:
        counts[row[0]] = counts.get(row[0], 0) + 1
    assert counts == {2019: 1_200, 2020: 1_100}
    assert (2019, "01", "C1", 1.5, datetime(2019, 3, 1, 10)) in first
    assert (2019, "48", "C6", 1_500.0, datetime(2019, 3, 1, 10)) in first  # "1,500.0"
    assert (2019, "00", "C0", None, datetime(2019, 3, 1, 10)) in first  # empty is NULL, not 0
    assert dg.materialize(assets, partition_key="2020", resources=resources,
                          instance=instance).success  # fmt: skip
    assert table_rows(warehouse_url) == first
