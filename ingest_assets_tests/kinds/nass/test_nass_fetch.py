"""Fetching a slice: pages are counted without decoding records, and still checked to be whole
CSV or JSON (a cut-off page is retried)."""

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from ingest_assets.errors import SourceUnavailable
from ingest_assets.http import HttpClient
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.fields import FIELDS
from ingest_assets.kinds.nass.pages import RecordCount, count_or_decode
from ingest_assets.kinds.nass.source import NassSource
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2020: 5_000})) as server:
        yield server


def _source(standin: NassStandIn, response_format: str = "csv") -> NassSource:
    config = NassDatasetConfig(
        name="f",
        source="nass",
        table="t",
        start_year=2000,
        query={},
        response_format=response_format,
    )
    client = HttpClient(secrets=[standin.api_key], max_attempts=2)
    return NassSource(config, client, standin.api_key, standin.base_url)


def test_a_csv_page_is_counted_and_its_body_kept_as_received(standin):
    source = _source(standin)
    assert source.config.page_format == "csv"
    [part] = source.plan(2020).slices
    [page] = source.fetch(part)
    assert page.body.startswith(b'"source_desc","sector_desc",')
    assert page.rows == 5_000 == pacsv.read_csv(pa.py_buffer(page.body)).num_rows


def test_a_json_page_is_counted_and_its_body_kept_as_received(standin):
    source = _source(standin, "json")
    assert source.config.page_format == "json"
    [part] = source.plan(2020).slices
    [page] = source.fetch(part)
    assert page.rows == 5_000 == len(orjson.loads(page.body)["data"])


def test_csv_and_json_pages_of_a_slice_hold_the_same_records(standin):
    [part] = _source(standin).plan(2020).slices
    [csv_page] = _source(standin).fetch(part)
    [json_page] = _source(standin, "json").fetch(part)
    as_csv = pacsv.read_csv(
        pa.py_buffer(csv_page.body),
        convert_options=pacsv.ConvertOptions(
            column_types={f: pa.int64() if f == "year" else pa.string() for f in FIELDS},
            strings_can_be_null=False,
        ),
    ).to_pylist()
    as_json = orjson.loads(json_page.body)["data"]
    assert len(as_csv) == len(as_json) == 5_000
    assert sorted(tuple(sorted(r.items())) for r in as_csv) == sorted(
        tuple(sorted(r.items())) for r in as_json
    )


def test_count_or_decode_counts_pages_and_decodes_anything_else():
    assert count_or_decode(b'{"data":[{"a":"1"},{"b":2}]}') == RecordCount(2)
    assert count_or_decode(b'{"data":[]}') == RecordCount(0)
    assert count_or_decode(b'{"error":["exceeds limit=50000"]}') == {
        "error": ["exceeds limit=50000"]
    }
    assert count_or_decode(b'{\n  "data": [\n    {"a": "1"}\n  ]\n}') == RecordCount(1)
    assert count_or_decode(b'[{"a": "1"}]') == [{"a": "1"}]
    with pytest.raises(ValueError):
        count_or_decode(b'{"data":[{"a":"1"},{"b"')


def test_count_or_decode_counts_csv_and_refuses_a_cut_or_foreign_body():
    header = b'"a","b","c"\n'
    assert count_or_decode(header + b'"1","x","2"\n"3","y,z","4"\n') == RecordCount(2)
    assert count_or_decode(header + b'"1","two\nlines","2"\n') == RecordCount(1)
    assert count_or_decode(header) == RecordCount(0)
    for cut in (header + b'"1","x"\n', header + b'"1","x","2"\n"3","y'):
        with pytest.raises(ValueError, match="Expected 3 columns"):
            count_or_decode(cut)
    with pytest.raises(ValueError):
        count_or_decode(b"<html><body>Service Unavailable</body></html>")


def test_a_cut_off_page_is_retried_then_reported(standin):
    source = _source(standin)
    [part] = source.plan(2020).slices
    standin.inject("truncate", times=2, endpoint="api_GET")
    with pytest.raises(SourceUnavailable, match="gave up after 2 attempts"):
        list(source.fetch(part))
