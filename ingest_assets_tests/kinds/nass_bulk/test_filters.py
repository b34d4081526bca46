"""The query applied while streaming keeps exactly the rows the API stand-in counts for it."""

import pytest

from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.source import NassBulkFiles
from ingest_assets.kinds.nass_bulk.store import SplitStore
from ingest_assets.standin.nass_bulk_server import NassBulkStandIn
from ingest_assets.standin.nass_data import NassDataset

YEARS = {2020: 2_000, 2021: 1_200}
QUERIES = [
    {},
    {"state_alpha": "ia"},  # matching is case-insensitive, as the API's
    {"commodity_desc__LIKE": ["CORN", "WHEAT"]},
    {"short_desc__NOT_LIKE": "ACRES", "state_alpha__NE": ["IA", "IL"]},
    {"county_code__GE": "010", "county_code__LT": "020"},
    {"county_ansi": ""},  # the OTHER (COMBINED) COUNTIES rows
]


@pytest.fixture(scope="module")
def standin():
    with NassBulkStandIn(NassDataset(records_per_year=YEARS, default_records=0)) as server:
        yield server


@pytest.mark.parametrize("query", QUERIES, ids=[str(q) for q in QUERIES])
def test_the_split_keeps_what_the_api_counts(standin, tmp_path, query):
    config = NassBulkDatasetConfig(
        name="f",
        source="nass_bulk",
        table="t",
        file="crops",
        start_year=2020,
        end_year=2021,
        query=query,
    )
    files = NassBulkFiles(listing_url=standin.listing_url, work_dir=str(tmp_path))
    manifest, reused = SplitStore(files.work_dir, config).ensure(
        files.remote(config), files.download, lambda _: None
    )
    assert not reused
    kept = {int(y): part["rows"] for y, part in manifest["years"].items()}
    expected = {y: standin.dataset.count({**query, "year": y}) for y in YEARS}
    assert kept == {y: n for y, n in expected.items() if n}
    assert manifest["rows_read"] == sum(YEARS.values())
