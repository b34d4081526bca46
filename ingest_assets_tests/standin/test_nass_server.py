"""Tests of the NASS Quick Stats stand-in itself, over real HTTP with requests.

Every NASS client test trusts this server, so it must keep the documented contract
(shared/reference/nass_quickstats.md): auth, the 50k limit, error bodies, filters, value quirks,
the count distribution client splitting relies on, revisions and injected faults.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from pyarrow import csv as pa_csv

from ingest_assets.kinds.nass.fields import FIELDS
from ingest_assets.standin import nass_server
from ingest_assets.standin.nass_data import CONSTANTS, SUPPRESSION_CODES, NassDataset
from ingest_assets.standin.nass_server import NassStandIn, csv_lines

BIG_YEAR = 2020  # 1,000,000 records: needs splitting down to county → commodity
FULL_YEAR = 2018  # exactly 50,000 records: the largest answer allowed
SMALL_YEAR = 2019  # the default 2,000 records
LIMIT_BODY = b'{"error":["exceeds limit=50000"]}'
NO_DATA_BODY = {"error": ["bad request - invalid query"]}
NATURAL_KEY = [f for f in FIELDS if f not in ("Value", "CV (%)", "load_time")]


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset({BIG_YEAR: 1_000_000, FULL_YEAR: 50_000})) as server:
        yield server


@pytest.fixture
def server(standin: NassStandIn) -> NassStandIn:
    """The shared stand-in with fresh statistics and no pending faults."""
    standin.clear_faults()
    standin.reset_stats()
    return standin


def get(server: NassStandIn, endpoint: str, **params: Any) -> requests.Response:
    params.setdefault("key", server.api_key)
    return requests.get(f"{server.base_url}/{endpoint}/", params=params, timeout=30)


def count(server: NassStandIn, **params: Any) -> int:
    response = get(server, "get_counts", **params)
    assert response.status_code == 200
    return response.json()["count"]


def records(server: NassStandIn, **params: Any) -> list[dict[str, Any]]:
    response = get(server, "api_GET", **params)
    assert response.status_code == 200, response.text[:200]
    return response.json()["data"]


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_a_missing_or_wrong_key_is_401(server, key):
    params = {} if key is None else {"key": key}
    response = requests.get(f"{server.base_url}/get_counts", params=params, timeout=30)
    assert response.status_code == 401
    assert response.json() == {"error": ["unauthorized"]}


def test_counts_are_ints_and_states_add_up_to_the_year(server):
    year_count = count(server, year=BIG_YEAR)
    assert year_count == 1_000_000
    assert get(server, "get_counts", year=BIG_YEAR).content == b'{"count":1000000}'
    states = get(server, "get_param_values", param="state_alpha", year=BIG_YEAR).json()
    assert len(states["state_alpha"]) == 50
    assert sum(count(server, year=BIG_YEAR, state_alpha=s) for s in states["state_alpha"]) == (
        year_count
    )


def test_a_big_year_splits_by_state_then_county_then_commodity(server):
    """At 1,000,000 records, some states and one Iowa county exceed the limit on their own;
    the county's commodities fit, and every level adds up to its parent."""
    query = {"year": BIG_YEAR, "state_alpha": "IA"}
    state_count = count(server, **query)
    assert state_count > 50_000
    assert count(server, year=BIG_YEAR, state_alpha=["IL", "NE", "KS"]) > 150_000
    counties = get(server, "get_param_values", param="county_code", **query).json()
    county_counts = {c: count(server, county_code=c, **query) for c in counties["county_code"]}
    assert "998" in county_counts
    assert sum(county_counts.values()) == state_count
    big_county, big_count = max(county_counts.items(), key=lambda item: item[1])
    assert big_count > 50_000
    query["county_code"] = big_county
    assert get(server, "api_GET", **query).status_code == 413
    commodities = get(server, "get_param_values", param="commodity_desc", **query).json()
    leaves = [count(server, commodity_desc=c, **query) for c in commodities["commodity_desc"]]
    assert sum(leaves) == big_count
    assert max(leaves) <= 50_000


def test_over_50000_records_is_413_without_content_type(server):
    for params in ({"year": BIG_YEAR}, {}, {"year__GET": "2000"}):  # unknown names are ignored
        response = get(server, "api_GET", **params)
        assert response.status_code == 413
        assert response.content == LIMIT_BODY
        assert "Content-Type" not in response.headers


def test_exactly_50000_records_stream_in_one_response(server):
    started = time.perf_counter()
    response = get(server, "api_GET", year=FULL_YEAR)
    data = response.json()["data"]
    assert time.perf_counter() - started < 10  # typically about a second
    assert response.status_code == 200
    assert response.headers["Transfer-Encoding"] == "chunked"
    assert len(data) == 50_000
    assert server.stats.max_rows_served == 50_000
    assert server.stats.rows_served == 50_000


def test_no_matching_data_is_400_but_counts_zero(server):
    for params in ({"year": 2102}, {"year": SMALL_YEAR, "commodity_desc": "KIWIFRUIT"}):
        response = get(server, "api_GET", **params)
        assert response.status_code == 400
        assert response.json() == NO_DATA_BODY
        assert "Content-Type" not in response.headers
        assert count(server, **params) == 0


def test_comma_joined_years_are_500_html(server):
    response = get(server, "api_GET", year="2019,2020")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "text/html"
    assert response.text.startswith("<!DOCTYPE html")


def test_unknown_paths_are_404(server):
    response = requests.get(f"{server.base_url}/asdf", timeout=30)
    assert response.status_code == 404
    assert "error" in response.json()


def test_repeated_parameters_are_ORed(server):
    both = count(server, year=SMALL_YEAR, state_alpha=["IA", "IL"])
    assert both == count(server, year=SMALL_YEAR, state_alpha="IA") + count(
        server, year=SMALL_YEAR, state_alpha="IL"
    )
    data = records(server, year=SMALL_YEAR, state_alpha=["IA", "IL"])
    assert len(data) == both
    assert {r["state_alpha"] for r in data} == {"IA", "IL"}


def test_year_operators(server):
    per_year = {y: count(server, year=y) for y in range(2015, 2022)}
    assert count(server, year__GE=2016, year__LE=2018) == sum(
        per_year[y] for y in (2016, 2017, 2018)
    )
    assert count(server, year__GT=2015, year__LT=2017) == per_year[2016]
    total = count(server)
    assert count(server, year__NE=BIG_YEAR) == total - per_year[BIG_YEAR]
    assert count(server, year__LIKE="202", year__LT=2022) == per_year[2020] + per_year[2021]
    assert count(server, year__NOT_LIKE="20") == 0


def test_records_look_like_quick_stats(server):
    data = records(server, year=SMALL_YEAR)
    assert len(data) == 2_000
    assert all(sorted(r) == sorted(FIELDS) for r in data)
    assert len({tuple(r) for r in data}) > 5  # the key order changes between records
    assert all(type(r["year"]) is int and r["year"] == SMALL_YEAR for r in data)
    assert all(isinstance(r[f], str) for r in data for f in FIELDS if f != "year")
    assert all(r[f] == v for r in data for f, v in CONSTANTS.items())
    assert len({tuple(r[f] for f in NATURAL_KEY) for r in data}) == len(data)
    values = [r["Value"] for r in data]
    assert any(re.fullmatch(r"\d{1,3}(,\d{3})+", v) for v in values)
    assert any(re.fullmatch(r"[\d,]+\.\d", v) for v in values)
    codes = Counter(v.strip() for v in values if v.strip().startswith("("))
    assert set(codes) == set(SUPPRESSION_CODES)
    assert 0.02 < codes.total() / len(values) < 0.08
    assert any(v != v.strip() for v in values)  # some codes are whitespace-padded
    cvs = {r["CV (%)"] for r in data}
    assert {"", "(H)", "(L)"} <= cvs
    assert any(re.fullmatch(r"\d+\.\d", cv) for cv in cvs)
    other = [r for r in data if r["county_code"] == "998"]
    assert other
    assert all(r["county_ansi"] == "" for r in other)
    assert all(r["county_name"] == "OTHER (COMBINED) COUNTIES" for r in other)
    assert all(re.fullmatch(r"\d\d", r["state_ansi"]) for r in data)
    assert all(re.fullmatch(r"\d\d\d", r["county_code"]) for r in data)


def test_load_time_has_both_formats(server):
    old = records(server, year=2010, state_alpha="IA")
    new = records(server, year=SMALL_YEAR, state_alpha="IA")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["load_time"]) for r in old)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.000", r["load_time"]) for r in new)


def test_param_values(server):
    response = get(server, "get_param_values", param="sector_desc")
    assert response.json() == {"sector_desc": ["CROPS"]}
    years = get(server, "get_param_values", param="year").json()["year"]
    assert years == list(range(2000, 2026))
    statistics = get(server, "get_param_values", param="statisticcat_desc", year=SMALL_YEAR)
    assert statistics.json()["statisticcat_desc"] == [
        "AREA HARVESTED",
        "AREA PLANTED",
        "PRODUCTION",
        "YIELD",
    ]
    assert get(server, "get_param_values", param="Value").status_code == 400
    assert get(server, "get_param_values", param="county_code", year=2102).json() == {
        "county_code": []
    }


def test_csv_format(server):
    response = get(server, "api_GET", year=SMALL_YEAR, state_alpha="IA", format="CSV")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.text.startswith('"source_desc","sector_desc",')
    rows = list(csv.reader(io.StringIO(response.text)))
    assert tuple(rows[0]) == FIELDS
    assert len(rows) - 1 == count(server, year=SMALL_YEAR, state_alpha="IA")
    assert get(server, "api_GET", year=SMALL_YEAR, format="fax").status_code == 415


def test_records_are_deterministic_and_counts_exact():
    filters: list[dict[str, Any]] = [
        {"year": SMALL_YEAR},
        {"year__GE": 2003, "year__LT": 2005, "state_alpha": ["IA", "TX"]},
        {"year": SMALL_YEAR, "statisticcat_desc": "YIELD", "domain_desc__NE": "TOTAL"},
        {"year": SMALL_YEAR, "domaincat_desc__LIKE": "ACRES", "commodity_desc": "CORN"},
        {"year": SMALL_YEAR, "county_ansi": "", "commodity_desc__NOT_LIKE": "CORN"},
        {"year": SMALL_YEAR, "short_desc__NOT_LIKE": "PLANTED", "state_alpha__LIKE": "I"},
        {"year": SMALL_YEAR, "load_time__GE": "2020-02-01 08:30"},
    ]
    first, second, other_seed = NassDataset(), NassDataset(), NassDataset(seed=1)
    for query in filters:
        generated = list(first.records(query))
        assert first.count(query) == len(generated) > 0, query
        assert list(second.records(query)) == generated
    assert list(other_seed.records(filters[0])) != list(first.records(filters[0]))


def test_a_revision_changes_values_load_time_and_count():
    dataset = NassDataset({2021: 3_000})
    with NassStandIn(dataset) as server:
        before = {tuple(r[f] for f in NATURAL_KEY): r for r in records(server, year=2021)}
        dataset.revise(2021)
        after = {tuple(r[f] for f in NATURAL_KEY): r for r in records(server, year=2021)}
        assert after.keys() == before.keys()
        changed = sum(before[k]["Value"] != after[k]["Value"] for k in before)
        assert 0.1 < changed / len(before) < 0.4
        assert all(before[k]["load_time"] < after[k]["load_time"] for k in before)
        assert dataset.revision(2021) == 1
        dataset.revise(2021, records=3_500)
        assert count(server, year=2021) == 3_500
        dataset.revise(2026, records=10)  # a new year appears
        assert count(server, year=2026) == 10


@pytest.mark.parametrize(
    ("fault", "status", "retry_after", "marker"),
    [
        ("429", 429, None, "429 Too Many Requests"),
        ("429-retry-after-0", 429, "0", "429 Too Many Requests"),
        ("429-retry-after-2", 429, "2", "nginx"),
        ("500", 500, None, "500 - Internal server error"),
        ("502", 502, None, "502 Bad Gateway"),
        ("503", 503, None, "503 Service Temporarily Unavailable"),
        ("html200", 200, None, "<!DOCTYPE html>"),
    ],
)
def test_html_faults(server, fault, status, retry_after, marker):
    server.inject(fault)
    response = get(server, "get_counts", year=SMALL_YEAR)
    assert response.status_code == status
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers.get("Retry-After") == retry_after
    assert marker in response.text
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert count(server, year=SMALL_YEAR) == 2_000  # normal service resumes
    assert server.stats.faults_served == {fault: 1}


def test_reset_closes_the_connection_without_a_response(server):
    server.inject("reset")
    with pytest.raises(requests.ConnectionError):
        get(server, "get_counts", year=SMALL_YEAR)
    assert count(server, year=SMALL_YEAR) == 2_000
    assert server.stats.requests[0].status == 0


@pytest.mark.parametrize("endpoint", ["api_GET", "get_counts"])
def test_truncate_sends_half_a_body(server, endpoint):
    server.inject("truncate", endpoint=endpoint)
    with pytest.raises(requests.RequestException):
        get(server, endpoint, year=SMALL_YEAR)
    assert len(records(server, year=SMALL_YEAR)) == 2_000


def test_slow_delays_the_answer(server):
    server.inject("slow:0.5")
    started = time.perf_counter()
    assert count(server, year=SMALL_YEAR) == 2_000
    assert time.perf_counter() - started >= 0.5


def test_short_drops_records_that_get_counts_promised(server):
    server.inject("short:3")  # only ever applies to api_GET
    assert count(server, year=SMALL_YEAR) == 2_000
    assert len(records(server, year=SMALL_YEAR)) == 1_997
    assert len(records(server, year=SMALL_YEAR)) == 2_000


def test_faults_queue_per_endpoint_then_service_resumes(server):
    server.inject("503", times=2, endpoint="api_GET")
    server.inject("500")
    assert get(server, "get_counts", year=SMALL_YEAR).status_code == 500
    statuses = [get(server, "api_GET", year=SMALL_YEAR).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert server.stats.faults_served == {"503": 2, "500": 1}
    with pytest.raises(ValueError, match="unknown fault"):
        server.inject("418")
    with pytest.raises(ValueError, match="unknown endpoint"):
        server.inject("500", endpoint="api_POST")


def test_statistics_log_requests_with_the_key_redacted(server):
    count(server, year=SMALL_YEAR, state_alpha=["IA", "IL"])
    records(server, year=SMALL_YEAR, state_alpha="IA")
    get(server, "api_GET", year=BIG_YEAR)
    assert server.stats.requests_by_endpoint == {"get_counts": 1, "api_GET": 2}
    first = server.stats.requests[0]
    assert first.endpoint == "get_counts"
    assert first.path == "/api/get_counts/"
    assert first.params == (
        ("year", str(SMALL_YEAR)),
        ("state_alpha", "IA"),
        ("state_alpha", "IL"),
        ("key", "REDACTED"),
    )
    assert [r.status for r in server.stats.requests] == [200, 200, 413]
    assert server.api_key not in repr(server.stats.requests)


def test_peak_concurrency_counts_simultaneous_requests():
    with NassStandIn(latency=0.4) as server, ThreadPoolExecutor(6) as pool:
        started = time.perf_counter()
        counts = list(pool.map(lambda _: count(server, year=SMALL_YEAR), range(6)))
        assert time.perf_counter() - started < 6 * 0.4
    assert counts == [2_000] * 6
    assert server.stats.peak_concurrency >= 3


def test_runs_as_a_separate_process():
    project = Path(nass_server.__file__).resolve().parents[2]
    command = [sys.executable, "-m", "ingest_assets.standin.nass_server", "--port", "0"]
    command += ["--records-per-year", "2020=1000000", "2021=7", "--cache-responses"]
    with subprocess.Popen(command, cwd=project, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api", base_url)
            params = {"key": nass_server.DEFAULT_API_KEY, "year": 2021}
            response = requests.get(f"{base_url}/get_counts/", params=params, timeout=30)
            assert response.json() == {"count": 7}
            csv_params = {**params, "format": "CSV"}
            bodies = [
                requests.get(f"{base_url}/api_GET/", params=csv_params, timeout=30).content
                for _ in range(2)
            ]
            assert bodies[0] == bodies[1] and len(csv_records(bodies[0])) == 7
        finally:
            process.terminate()


def csv_records(body: bytes) -> list[tuple[str, ...]]:
    """The records of a CSV body, parsed by pyarrow with every column a string."""
    options = pa_csv.ConvertOptions(column_types=dict.fromkeys(FIELDS, pa.string()))
    table = pa_csv.read_csv(pa.py_buffer(body), convert_options=options)
    assert tuple(table.column_names) == FIELDS
    assert table.num_rows == 0 or not any(table.column(f).null_count for f in FIELDS)
    return list(zip(*(table.column(f).to_pylist() for f in FIELDS), strict=True))


@pytest.mark.parametrize(
    "query",
    [
        {"year": FULL_YEAR},
        {"year": SMALL_YEAR, "statisticcat_desc": "YIELD", "domain_desc__NE": "TOTAL"},
    ],
)
def test_a_csv_body_holds_the_records_of_the_json_body(server, query):
    csv_body = get(server, "api_GET", format="CSV", **query).content
    assert csv_body.count(b"\n") == count(server, **query) + 1
    assert b"\r" not in csv_body
    from_csv = csv_records(csv_body)
    from_json = [tuple(str(r[f]) for f in FIELDS) for r in records(server, **query)]
    assert len(from_csv) == len(from_json) == len(set(from_csv))
    assert set(from_csv) == set(from_json)


def test_csv_lines_quote_every_field_and_double_embedded_quotes():
    plain = ("CORN", "", "1,234")
    quoted = ('12" ROWS', '"', "")
    assert csv_lines([plain]) == '"CORN","","1,234"\n'
    assert csv_lines([quoted]) == '"12"" ROWS","""",""\n'
    rows = [plain, quoted, plain]
    text = csv_lines(rows)
    expected = io.StringIO()
    csv.writer(expected, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    assert text == expected.getvalue()
    assert list(csv.reader(io.StringIO(text))) == [list(row) for row in rows]


def test_cached_bodies_are_rendered_once_then_served_from_memory():
    dataset = NassDataset({2021: 3_000})
    with NassStandIn(dataset, cache_responses=True) as cached, NassStandIn(dataset) as fresh:
        first = get(cached, "api_GET", year=2021, format="CSV").content
        again = get(cached, "api_GET", year=2021, format="CSV").content
        assert first == again == get(fresh, "api_GET", year=2021, format="CSV").content
        assert (cached.stats.cache_misses, cached.stats.cache_hits) == (1, 1)
        assert cached.stats.rows_served == 2 * 3_000
        as_json = [get(cached, "api_GET", year=2021).content for _ in range(2)]
        assert as_json[0] == as_json[1]
        assert [get(fresh, "api_GET", year=2021).content for _ in range(2)] != as_json
        assert (cached.stats.cache_misses, cached.stats.cache_hits) == (2, 2)

        dataset.revise(2021)
        revised = get(cached, "api_GET", year=2021, format="CSV").content
        assert revised != first
        assert revised == get(fresh, "api_GET", year=2021, format="CSV").content
        assert (cached.stats.cache_misses, cached.stats.cache_hits) == (3, 2)
        assert len(csv_records(revised)) == 3_000


def test_faults_still_apply_to_cached_bodies():
    with NassStandIn(NassDataset({2021: 3_000}), cache_responses=True) as server:
        full = get(server, "api_GET", year=2021, format="CSV").content
        server.inject("truncate")
        with pytest.raises(requests.RequestException):
            get(server, "api_GET", year=2021, format="CSV")
        assert server.stats.cache_hits == 1
        server.inject("short:3")  # rendered afresh, never cached
        assert len(csv_records(get(server, "api_GET", year=2021, format="CSV").content)) == 2_997
        assert get(server, "api_GET", year=2021, format="CSV").content == full
        assert (server.stats.cache_misses, server.stats.cache_hits) == (1, 2)
        assert server.stats.faults_served == {"truncate": 1, "short:3": 1}
