"""Fetching a slice: pages are counted without decoding records, and still checked to be JSON."""

import orjson
import pytest

from ingest_assets.http import HttpClient, SourceUnavailable
from ingest_assets.sources.nass import NassDatasetConfig, NassSource, RecordCount, _count_or_decode
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2020: 5_000})) as server:
        yield server


def _source(standin: NassStandIn) -> NassSource:
    config = NassDatasetConfig(name="f", source="nass", table="t", start_year=2000, query={})
    client = HttpClient(secrets=[standin.api_key], max_attempts=2)
    return NassSource(config, client, standin.api_key, standin.base_url)


def test_a_page_is_counted_and_its_body_kept_as_received(standin):
    source = _source(standin)
    [part] = source.plan(2020).slices
    [page] = source.fetch(part)
    assert page.rows == 5_000 == len(orjson.loads(page.body)["data"])


def test_count_or_decode_counts_pages_and_decodes_anything_else():
    assert _count_or_decode(b'{"data":[{"a":"1"},{"b":2}]}') == RecordCount(2)
    assert _count_or_decode(b'{"data":[]}') == RecordCount(0)
    assert _count_or_decode(b'{"error":["exceeds limit=50000"]}') == {
        "error": ["exceeds limit=50000"]
    }
    assert _count_or_decode(b'{\n  "data": [\n    {"a": "1"}\n  ]\n}') == RecordCount(1)
    assert _count_or_decode(b'[{"a": "1"}]') == [{"a": "1"}]
    with pytest.raises(ValueError):
        _count_or_decode(b'{"data":[{"a":"1"},{"b"')


def test_a_cut_off_page_is_retried_then_reported(standin):
    source = _source(standin)
    [part] = source.plan(2020).slices
    standin.inject("truncate", times=2, endpoint="api_GET")
    with pytest.raises(SourceUnavailable, match="gave up after 2 attempts"):
        list(source.fetch(part))
