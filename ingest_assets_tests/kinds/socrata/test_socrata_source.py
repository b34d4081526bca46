"""The Socrata source against the stand-in over HTTP: paging, counts, token, signals, cleaning.

Tests taking ``standin`` run twice: with a token (SODA3, ``POST …/query.json``) and without one
(SODA 2.1 ``/resource``); ``source_of`` builds the source the way that run's mode implies.
"""

from pathlib import Path

import dagster as dg
import orjson
import pytest

from ingest_assets.automation.sensors import WatchCursor, check_years
from ingest_assets.errors import CleaningError, SourceError
from ingest_assets.kinds.socrata.cleaner import SocrataCleaner
from ingest_assets.kinds.socrata.config import SocrataDatasetConfig
from ingest_assets.kinds.socrata.source import SocrataApi
from ingest_assets.settings import ExplicitSettings
from ingest_assets.standin.socrata_data import LA311_2017_FIELDS, columns_of, rows_from_portal_csv
from ingest_assets.standin.socrata_server import SocrataStandIn
from ingest_assets.standin.socrata_soda3 import deep_offsets

FIXTURE = (
    Path(__file__).resolve().parents[2]
    / "fixtures/socrata/la311/MyLA311_Service_Request_Data_2017_Subset.csv.gz"
)
TOKEN = "app-token-0123456789abcdef"


def config(**fields) -> SocrataDatasetConfig:
    values = {
        "name": "la_t",
        "source": "socrata",
        "domain": "data.lacity.org",
        "table": "requests",
        "start_year": 2017,
        "dataset_ids": {2017: "la-2017"},
        "key": ["srnumber"],
        "columns": {"srnumber": "text", "updateddate": "timestamp", "nc": "integer"},
        **fields,
    }
    return SocrataDatasetConfig(**values)


@pytest.fixture(scope="module")
def la_rows():
    return rows_from_portal_csv(FIXTURE, LA311_2017_FIELDS)


@pytest.fixture(params=["soda3", "soda2"])
def standin(la_rows, request):
    with SocrataStandIn(app_token=TOKEN) as server:
        server.add_dataset("la-2017", la_rows, columns_of(LA311_2017_FIELDS), "srnumber")
        server.client_token = TOKEN if request.param == "soda3" else ""
        yield server


def source_of(standin, token=None, **fields):
    token = standin.client_token if token is None else token
    source = SocrataApi(app_token=token, base_url=standin.base_url).source(config(**fields))
    assert source.soda3 == bool(token)  # auto: SODA3 exactly when a token is set
    return source


def data_requests(standin) -> list[dict[str, str]]:
    """Parameters of the row and count queries, whichever API carried them."""
    return [r.params for r in standin.stats.requests if r.endpoint == "resource"]


def test_pages_in_a_total_order_until_a_short_page(standin):
    source = source_of(standin, page_size=3_000)
    plan = source.plan(2017)
    assert plan.source_count == 9_999 and len(plan.slices) == 1
    pages = list(source.fetch(plan.slices[0]))
    assert [p.rows for p in pages] == [3_000, 3_000, 3_000, 999]
    keys = [row["srnumber"] for p in pages for row in orjson.loads(p.body)]
    assert len(keys) == len(set(keys)) == 9_999
    requests = data_requests(standin)
    pages_sent = [p for p in requests if "$limit" in p]
    assert {p["$limit"] for p in pages_sent} == {"3000"}
    if standin.client_token:  # SODA3: page numbers over key, then :id
        assert [p["$offset"] for p in pages_sent] == ["0", "3000", "6000", "9000"]
        assert {p["$order"] for p in pages_sent} == {"srnumber,:id"}
        assert all(
            r.path.startswith("/api/v3/")
            for r in standin.stats.requests
            if r.endpoint == "resource"
        )
    else:  # SODA2 full load: keyset on :id, no offsets
        assert deep_offsets(requests) == [] and all("$offset" not in p for p in pages_sent)
        assert {p["$order"] for p in pages_sent} == {":id"}
        wheres = [p.get("$where") for p in pages_sent]
        ids = sorted(r[":id"] for r in standin.rows("la-2017"))
        assert wheres == [None] + [f":id > '{ids[n - 1]}'" for n in (3000, 6000, 9000)]
    counts = [p for p in requests if p.get("$select") == "count(*) AS n"]
    assert len(counts) == 2  # before paging and after
    assert all(r.token_sent == bool(standin.client_token) for r in standin.stats.requests)


def test_a_page_size_that_divides_the_count_ends_on_an_empty_page(standin):
    source = source_of(standin, page_size=3_333)
    pages = list(source.fetch(source.plan(2017).slices[0]))
    assert [p.rows for p in pages] == [3_333, 3_333, 3_333]
    pages_sent = [p for p in data_requests(standin) if "$limit" in p]
    if standin.client_token:
        assert [p["$offset"] for p in pages_sent] == ["0", "3333", "6666", "9999"]
    else:
        ids = sorted(r[":id"] for r in standin.rows("la-2017"))
        assert [p.get("$where") for p in pages_sent] == [None] + [
            f":id > '{ids[n - 1]}'" for n in (3333, 6666, 9999)
        ]


def test_the_token_goes_in_a_header_and_never_into_errors_or_metadata(standin):
    source = source_of(standin)
    assert TOKEN not in str(source.describe_query(2017))
    assert ("query.json" in source.describe_query(2017)["url"]) == source.soda3
    with pytest.raises(SourceError) as caught:
        source_of(standin, token="wrong-token-zzzz").count(2017)
    assert "SOCRATA_APP_TOKEN" in str(caught.value) and "wrong-token-zzzz" not in str(caught.value)
    assert all("$$app_token" not in r.params for r in standin.stats.requests)


def test_settings_pass_the_token_only_when_set(monkeypatch):
    api = SocrataApi.from_settings(ExplicitSettings(socrata_base_url="http://127.0.0.1:9"))
    assert api.app_token == "" and api.base_url == "http://127.0.0.1:9"
    monkeypatch.setenv("SOCRATA_APP_TOKEN", TOKEN)  # the resource must refer to the variable
    api = SocrataApi.from_settings(ExplicitSettings(socrata_app_token=TOKEN))
    assert isinstance(api.app_token, dg.EnvVar)
    assert api.app_token.env_var_name == "SOCRATA_APP_TOKEN"
    with dg.build_resources({"socrata_api": api}) as built:
        assert built.socrata_api.app_token == TOKEN


def test_errors_name_the_dataset_and_year(standin):
    with pytest.raises(SourceError, match=r"year 2018: no dataset id for this year"):
        source_of(standin).plan(2018)
    with pytest.raises(SourceError, match=r"no such dataset"):
        source_of(standin, dataset_ids={2017: "gone-0000"}).count(2017)
    bad_column = {"srnumber": "text", "nope_col": "text"}
    with pytest.raises(SourceError, match=r"no-such-column"):
        list(source_of(standin, columns=bad_column).fetch(source_of(standin).plan(2017).slices[0]))


def test_change_signal_uses_rows_updated_at_then_view_last_modified(standin, la_rows):
    source = source_of(standin)
    first = source.change_signal([2017])
    standin.upsert_rows("la-2017", [{**la_rows[0], "status": "Open"}], key="srnumber")
    second = source.change_signal([2017])
    field, _, stamp = second[2017].partition("=")
    assert field == "rowsUpdatedAt" and int(stamp) > int(first[2017].partition("=")[2])
    standin.set_metadata_quirk("la-2017")
    metadata = source.change_signal([2017])
    # viewLastModified moves with the rows on this portal
    assert metadata == {2017: f"viewLastModified={stamp}"}
    assert all(r.endpoint in ("views", "resource") for r in standin.stats.requests)


def test_change_signal_falls_back_to_metadata_v1_then_the_catalog(standin, la_rows):
    source = source_of(standin)
    standin.set_metadata_quirk("la-2017")
    standin.drop_metadata_fields("la-2017", "viewLastModified")
    v1 = source.change_signal([2017])[2017]
    assert v1.startswith("dataUpdatedAt=20") and v1.endswith("Z")
    standin.upsert_rows("la-2017", [{**la_rows[0], "status": "Open"}], key="srnumber")
    moved = source.change_signal([2017])[2017]
    assert moved.startswith("dataUpdatedAt=") and moved > v1
    standin.drop_metadata_fields("la-2017", "viewLastModified", "dataUpdatedAt")
    assert source.change_signal([2017])[2017] == moved.replace("dataUpdatedAt", "data_updated_at")
    paths = [r.path for r in standin.stats.requests if r.endpoint == "views"]
    assert paths[-3:] == [
        "/api/views/la-2017.json",
        "/api/views/metadata/v1/la-2017",
        "/api/catalog/v1",
    ]
    standin.drop_metadata_fields("la-2017", "viewLastModified", "dataUpdatedAt", "data_updated_at")
    with pytest.raises(SourceError, match=r"none of rowsUpdatedAt, viewLastModified"):
        source.change_signal([2017])


def test_a_declared_column_the_portal_dropped_fails_before_any_data_request(standin, la_rows):
    columns = columns_of(LA311_2017_FIELDS)
    del columns["nc"]
    standin.add_dataset(
        "la-2017", [{k: v for k, v in r.items() if k != "nc"} for r in la_rows], columns, "srnumber"
    )
    standin.reset_stats()
    with pytest.raises(SourceError) as caught:
        source_of(standin).plan(2017)
    message = str(caught.value)
    assert "la_t, year 2017 (la-2017): declared columns the portal no longer publishes: nc" in (
        message
    )
    assert data_requests(standin) == []  # reported before a count or page was asked for
    lenient = source_of(standin)
    lenient.config.__dict__["on_schema_change"] = "add_columns"  # the field #17 adds
    plan = lenient.plan(2017)
    assert plan.source_count == 9_999
    assert any(n.startswith("warning: ") and n.endswith("publishes: nc") for n in plan.notes)


def test_undeclared_published_columns_are_noted_and_a_wrong_year_name_fails(standin, la_rows):
    notes = source_of(standin).plan(2017).notes
    assert "published but not declared (not loaded): createddate, actiontaken" in notes[0]
    standin.add_dataset(
        "la-2017",
        la_rows,
        columns_of(LA311_2017_FIELDS),
        "srnumber",
        name="MyLA311 Service Request Data 2016",
    )
    standin.reset_stats()
    with pytest.raises(
        SourceError,
        match=r"names this dataset 'MyLA311 Service Request Data "
        r"2016', not year 2017; check dataset_ids",
    ):
        source_of(standin).plan(2017)
    assert data_requests(standin) == []


def test_change_signal_of_one_dataset_is_per_year(standin, la_rows):
    source = source_of(
        standin,
        dataset_ids=None,
        dataset_id="la-2017",
        year_column="updateddate",
        updated_column="updateddate",
    )
    signals = source.change_signal([2017, 2018, 2019])
    assert signals[2019].endswith("|2019-03-12T17:15:04.000")
    assert signals[2017].split("|")[0] != signals[2019].split("|")[0]
    total = sum(int(s.split("|")[0]) for s in signals.values())
    assert total == 9_999
    before = dict(signals)
    changed = next(r for r in la_rows if r["updateddate"].startswith("2018"))
    standin.upsert_rows(
        "la-2017", [{**changed, "updateddate": "2019-05-01T00:00:00.000"}], key="srnumber"
    )
    after = source.change_signal([2017, 2018, 2019])
    assert after[2017] == before[2017] and after[2018] != before[2018]
    assert after[2019] != before[2019]


def test_cleaning_names_column_key_and_value_unless_null_on_error():
    rows = [
        {"srnumber": "1-1", "updateddate": "2018-01-02T03:04:05.000", "nc": "44"},
        {"srnumber": "1-2", "nc": "forty"},
    ]
    body = orjson.dumps(rows)
    strict = SocrataCleaner(config())
    with pytest.raises(CleaningError) as caught:
        strict.clean(strict.parse_page(body), 2017, "dataset la_t, year 2017, slice la-2017")
    assert "column 'nc' (integer) cannot hold 'forty' (key '1-2')" in str(caught.value)
    assert "dataset la_t, year 2017" in str(caught.value)
    lenient = SocrataCleaner(config(null_on_error=["nc"]))
    table = lenient.clean(lenient.parse_page(body), 2017, "where")
    assert table.column("nc").to_pylist() == [44, None]
    assert table.column("year").to_pylist() == [2017, 2017]
    assert table.column("updateddate").null_count == 1  # a missing field is NULL


def test_an_incremental_plan_of_one_dataset_filters_year_and_watermark(standin, la_rows):
    source = source_of(
        standin,
        dataset_ids=None,
        dataset_id="la-2017",
        year_column="updateddate",
        mode="incremental",
        updated_column="updateddate",
    )
    since = "2018-06-01T00:00:00.000"
    plan = source.plan_changes(2018, since)
    in_year = [r for r in la_rows if r["updateddate"].startswith("2018")]
    assert plan.year_count == len(in_year)
    assert plan.source_count == sum(r["updateddate"] >= since for r in in_year) > 0
    [part] = plan.slices
    assert part.params["$where"] == (
        "(updateddate >= '2018-01-01T00:00:00.000' AND updateddate < '2019-01-01T00:00:00.000')"
        " AND (updateddate >= '2018-06-01T00:00:00.000')",
    )
    fetched = [row for page in source.fetch(part) for row in orjson.loads(page.body)]
    assert len(fetched) == plan.source_count
    assert all(since <= row["updateddate"] < "2019" for row in fetched)


def test_a_200k_row_year_pages_by_keyset_without_duplicates_gaps_or_deep_offsets():
    rows = [
        {"srnumber": f"1-{n:07d}", "updateddate": "2017-06-01T00:00:00.000", "nc": str(n % 99)}
        for n in range(200_000)
    ]
    columns = {"srnumber": "text", "updateddate": "calendar_date", "nc": "number"}
    with SocrataStandIn() as server:
        server.add_dataset("la-2017", rows, columns, "srnumber")
        source = SocrataApi(base_url=server.base_url).source(config())
        part = source.plan(2017).slices[0]
        pages = list(source.fetch(part))
        requests = [r.params for r in server.stats.requests if r.endpoint == "resource"]
        served_ids = [r[":id"] for r in server.rows("la-2017")]
    fetched = [row for page in pages for row in orjson.loads(page.body)]
    assert [p.rows for p in pages] == [50_000] * 4  # then an empty page ends the slice
    assert [row[":id"] for row in fetched] == sorted(served_ids)  # total order, none twice
    assert sorted(row["srnumber"] for row in fetched) == [r["srnumber"] for r in rows]
    assert deep_offsets(requests) == [] and all("$offset" not in p for p in requests)
    assert len([p for p in requests if "$limit" in p]) == 5


def test_the_sensor_logic_sees_a_change_without_rows_updated_at(standin, la_rows):
    # The tick's logic over several ticks; test_socrata_sensor_preview runs one through Dagster.
    source = source_of(standin)
    standin.set_metadata_quirk("la-2017")
    first = check_years(source, [2017], WatchCursor.parse(None))
    assert first.changed == {} and first.cursor.fingerprints["2017"].startswith("viewLastModified=")
    quiet = check_years(source, [2017], first.cursor)
    assert quiet.changed == {}
    standin.upsert_rows("la-2017", [{**la_rows[0], "status": "Open"}], key="srnumber")
    moved = check_years(source, [2017], quiet.cursor)
    assert list(moved.changed) == [2017]
    assert moved.changed[2017] != first.cursor.fingerprints["2017"]
