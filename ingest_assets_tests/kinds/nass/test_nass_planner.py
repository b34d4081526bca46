"""The count-driven split planner against the stand-in (counting only; nothing is fetched)."""

import pytest

from ingest_assets.errors import SourceError
from ingest_assets.http import HttpClient
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.planner import RECORD_LIMIT
from ingest_assets.kinds.nass.source import NassSource
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn

QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}


def source_for(standin: NassStandIn, **overrides) -> NassSource:
    config = NassDatasetConfig(
        name="p", source="nass", table="t", start_year=2000, query={**QUERY, **overrides}
    )
    client = HttpClient(secrets=[standin.api_key], max_attempts=2)
    return NassSource(config, client, standin.api_key, standin.base_url)


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2020: 1_000_000, 2021: 30_000})) as server:
        yield server


def test_a_million_record_year_splits_down_to_county_and_commodity(standin):
    plan = source_for(standin).plan(2020)
    assert plan.source_count == 1_000_000
    assert sum(s.expected_rows for s in plan.slices) == 1_000_000
    assert all(0 < s.expected_rows <= RECORD_LIMIT for s in plan.slices)
    depths = {
        tuple(k for k in s.params if k in ("state_alpha", "county_code", "commodity_desc"))
        for s in plan.slices
    }
    assert ("state_alpha",) in depths
    assert ("state_alpha", "county_code") in depths
    assert ("state_alpha", "county_code", "commodity_desc") in depths
    keys = [s.key for s in plan.slices]
    assert len(keys) == len(set(keys))


def test_each_planned_slice_is_counted_by_the_api_as_promised(standin):
    plan = source_for(standin).plan(2020)
    for part in plan.slices[:: max(1, len(plan.slices) // 10)]:
        filters = [(k, v) for k, values in part.params.items() for v in values]
        assert standin.dataset.count(filters) == part.expected_rows


def test_a_small_year_is_one_slice(standin):
    plan = source_for(standin).plan(2021)
    assert [s.expected_rows for s in plan.slices] == [30_000]
    assert plan.slices[0].key == "all"


def test_an_empty_year_has_no_slices_and_no_data_requests(standin):
    standin.reset_stats()
    plan = source_for(standin, commodity_desc="NO SUCH CROP").plan(2020)
    assert plan.source_count == 0 and plan.slices == ()
    assert standin.stats.requests_by_endpoint["api_GET"] == 0


def test_a_slice_that_cannot_be_split_further_is_an_error_naming_it(standin):
    config = NassDatasetConfig(
        name="p",
        source="nass",
        table="t",
        start_year=2000,
        query=QUERY,
        split_dimensions=["state_alpha"],
    )
    client = HttpClient(secrets=[standin.api_key], max_attempts=2)
    source = NassSource(config, client, standin.api_key, standin.base_url)
    with pytest.raises(
        SourceError, match=r"dataset p, year 2020, slice state_alpha=\w\w: .* exceed"
    ):
        source.plan(2020)


def test_a_wrong_key_is_reported_as_such(standin):
    client = HttpClient(secrets=["nope"], max_attempts=2)
    config = NassDatasetConfig(name="p", source="nass", table="t", start_year=2000, query=QUERY)
    source = NassSource(config, client, "nope", standin.base_url)
    with pytest.raises(SourceError, match="rejected the API key") as error:
        source.plan(2020)
    assert "nope" not in str(error.value)
