"""The catalog: the shipped file is valid, and a bad one names every mistake."""

from pathlib import Path

import pytest
import yaml

from ingest_assets.catalog import load_budgets, load_catalog, parse_catalog
from ingest_assets.errors import CatalogError
from ingest_assets.kinds.files.config import FilesDatasetConfig
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.request_budget import RequestBudget

PROJECT = Path(__file__).resolve().parents[1]


def _socrata(**fields) -> dict:
    return {
        "source": "socrata",
        "domain": "data.example.org",
        "table": "t",
        "start_year": 2020,
        "dataset_id": "abcd-1234",
        "year_column": "created",
        "columns": {"id": "text", "created": "timestamp"},
        **fields,
    }


def test_the_shipped_catalog_holds_the_real_examples():
    catalog = load_catalog(PROJECT / "datasets.yaml")
    la = catalog["la311_requests"]
    assert isinstance(la, SocrataDatasetConfig)
    assert la.mode == "incremental" and la.key == ["srnumber"]
    assert la.dataset_ids[2019] == "pvft-t768" and la.domain == "data.lacity.org"
    assert set(la.dataset_ids) == set(range(la.start_year, la.end_year + 1))
    pets = catalog["seattle_pet_licenses"]
    assert pets.dataset_id == "jguv-t9rb" and pets.mode == "full"


def test_a_catalog_with_mistakes_names_each_of_them():
    document = {
        "datasets": {
            "unknown_kind": {"source": "ftp", "table": "t0", "start_year": 2020},
            "bad_table": _socrata(table="Robert'); DROP TABLE x;--"),
            "bad_column": _socrata(table="t2", columns={"id": "text", "Created Date": "text"}),
            "no_key": _socrata(table="t3", mode="incremental"),
            "odd_type": _socrata(table="t4", columns={"id": "varchar(9)", "created": "timestamp"}),
            "zero_years": _socrata(table="t6", years_per_run=0),
            "ends_1969": _socrata(table="t7", start_year=1960, end_year=1969),
            "files_incremental": {
                "source": "files",
                "table": "t5",
                "start_year": 2020,
                "path": "/data/*.csv.gz",
                "year_column": "year",
                "mode": "incremental",
                "key": ["id"],
                "updated_column": "seen",
                "columns": {"id": "text", "seen": "timestamp"},
            },
        }
    }
    with pytest.raises(CatalogError) as caught:
        parse_catalog(document, "test catalog")
    message = str(caught.value)
    assert "dataset 'unknown_kind', field 'source': unknown source 'ftp'" in message
    assert "dataset 'bad_table', field 'table'" in message and "DROP TABLE" in message
    assert "dataset 'bad_column', field 'columns'" in message and "'Created Date'" in message
    assert "dataset 'no_key', field 'key': mode 'incremental' needs a key" in message
    assert "dataset 'no_key', field 'updated_column'" in message
    assert "dataset 'odd_type', field 'columns'" in message
    assert "unknown type 'varchar(9)'" in message
    assert "dataset 'files_incremental', field 'mode'" in message
    assert "dataset 'zero_years', field 'years_per_run'" in message and "not 0" in message
    assert "dataset 'ends_1969', field 'end_year': end_year 1969 is not supported" in message
    assert message.count("\n  dataset ") == 9  # one line per mistake, no more


def test_socrata_entries_need_exactly_one_way_to_find_a_year():
    with pytest.raises(CatalogError) as caught:
        parse_catalog(
            {
                "datasets": {
                    "both": _socrata(dataset_ids={2020: "wxyz-0000"}),
                    "neither": _socrata(table="t2", dataset_id=None, year_column=None),
                    "untyped_year": _socrata(table="t3", year_column="nope"),
                    "late_watermark": _socrata(
                        table="t4",
                        mode="incremental",
                        key=["id"],
                        updated_column="id",
                    ),
                }
            }
        )
    message = str(caught.value)
    assert "dataset 'both', field 'dataset_id': give either dataset_id or dataset_ids" in message
    assert "dataset 'neither', field 'dataset_id'" in message
    assert "dataset 'untyped_year', field 'year_column': 'nope' must be a declared" in message
    assert "dataset 'late_watermark', field 'updated_column'" in message


def test_an_incremental_entry_and_a_files_entry_parse(tmp_path):
    catalog = tmp_path / "datasets.yaml"
    catalog.write_text(
        yaml.safe_dump(
            {
                "datasets": {
                    "inc": _socrata(
                        mode="incremental", key=["id"], updated_column="created", overlap="2 hours"
                    ),
                    "bulk": {
                        "source": "files",
                        "table": "bulk",
                        "start_year": 1990,
                        "path": "s3://bucket/qs/*.txt.gz",
                        "year_column": "YEAR",
                        "delimiter": "\t",
                        "columns": {"value": "double precision"},
                    },
                }
            }
        )
    )
    parsed = load_catalog(catalog)
    assert parsed["inc"].key == ["id"] and parsed["inc"].overlap == "2 hours"
    assert isinstance(parsed["bulk"], FilesDatasetConfig)
    assert [c.name for c in parsed["bulk"].typed_columns()] == ["year", "value"]


def test_budgets_merge_over_the_defaults_and_a_bad_one_names_host_and_field(tmp_path):
    catalog = tmp_path / "datasets.yaml"
    catalog.write_text(
        "datasets: {}\nbudgets:\n  Data.Example.org: {requests: 10, per_seconds: 60, "
        "concurrency: 1}\n"
    )
    budgets = load_budgets(catalog)
    assert budgets["data.example.org"].interval == 6.0
    assert budgets["quickstats.nass.usda.gov"].requests == 100  # the default stays
    budget = RequestBudget("postgresql://unused", budgets)
    assert budget.budget_for("https://data.example.org/resource/x.json")[0] == "data.example.org"
    assert budget.budget_for("https://other.example.org/x")[1] == budgets["default"]
    assert budget.budget_for("http://127.0.0.1:8080/api/get_counts/") is None
    with pytest.raises(CatalogError) as refused:
        parse_catalog({"datasets": {}, "budgets": {"h.example": {"requests": 0, "per_seconds": 1}}})
    assert "budgets.h.example.requests" in str(refused.value)
    assert "budgets.h.example.concurrency" in str(refused.value)
