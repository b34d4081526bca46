"""The shared HTTP client against every fault the Quick Stats stand-in injects, over real HTTP."""

from __future__ import annotations

import time

import pytest

from ingest_assets.errors import SourceError, SourceUnavailable
from ingest_assets.http import HttpClient
from ingest_assets.kinds.base import Slice
from ingest_assets.kinds.nass.config import NassDatasetConfig
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn

pytestmark = pytest.mark.reliability

QUERY = {"source_desc": "SURVEY", "sector_desc": "CROPS", "agg_level_desc": "COUNTY"}
CONFIG = NassDatasetConfig(
    name="nass_rel", source="nass", table="facts_data", start_year=2018, query=QUERY
)
WHAT = "dataset nass_rel, year 2019, slice all"
MIN_DELAY = 0.05
BASE = 0.05
CAP = 0.2


@pytest.fixture(scope="module")
def standin():
    dataset = NassDataset(records_per_year={2019: 300, 2020: 60_000})
    with NassStandIn(dataset) as server:
        yield server


@pytest.fixture
def served(standin, tally):
    """Clears the stand-in before a test; afterwards adds the faults it served to the tally."""
    standin.clear_faults()
    standin.reset_stats()
    yield standin
    tally.add("faults_injected", sum(standin.stats.faults_served.values()))
    standin.clear_faults()


def client(standin: NassStandIn, **options) -> HttpClient:
    settings = {"min_delay": MIN_DELAY, "backoff_base": BASE, "backoff_cap": CAP, **options}
    return HttpClient(secrets=[standin.api_key], **settings)


def year_get(http: HttpClient, standin: NassStandIn, year: int = 2019):
    params = [("key", standin.api_key), *QUERY.items(), ("year", str(year)), ("format", "JSON")]
    return http.get(f"{standin.base_url}/api_GET/", params, what=WHAT)


@pytest.mark.parametrize(
    "fault", ["429", "429-retry-after-0", "500", "502", "503", "reset", "truncate", "html200"]
)
def test_a_transient_fault_is_retried_with_growing_jittered_waits_never_zero(served, fault):
    served.inject(fault, times=2, endpoint="api_GET")
    http = client(served)
    started = time.monotonic()
    response = year_get(http, served)
    elapsed = time.monotonic() - started
    assert response.status == 200 and len(response.data["data"]) == 300
    assert served.stats.faults_served[fault] == 2
    assert response.attempts == 3 and http.retries == 2
    assert len(http.waits) == 2
    for attempt, wait in enumerate(http.waits, start=1):
        assert MIN_DELAY <= wait <= max(MIN_DELAY, min(CAP, BASE * 2 ** (attempt - 1)))
    assert elapsed >= sum(http.waits)  # the waits were slept, not skipped


@pytest.mark.parametrize(("cap", "expected"), [(5.0, 2.0), (0.3, 0.3)])
def test_retry_after_is_honoured_up_to_the_cap(served, cap, expected):
    served.inject("429-retry-after-2", times=1, endpoint="api_GET")
    http = client(served, retry_after_cap=cap)
    started = time.monotonic()
    assert year_get(http, served).status == 200
    assert http.waits == [expected]
    assert time.monotonic() - started >= expected


def test_retry_after_zero_still_waits_the_floor(served):
    served.inject("429-retry-after-0", times=1, endpoint="api_GET")
    http = client(served, min_delay=0.25)
    assert year_get(http, served).status == 200
    assert http.waits == [0.25]


def test_a_response_slower_than_the_read_timeout_is_abandoned_and_retried(served):
    served.inject("slow:3", times=1, endpoint="api_GET")
    http = client(served, read_timeout=0.5)
    response = year_get(http, served)
    assert response.status == 200 and response.attempts == 2 and len(http.waits) == 1
    deadline = time.monotonic() + 30  # the stand-in counts the fault once its sleep ends
    while not served.stats.faults_served["slow:3"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert served.stats.faults_served["slow:3"] == 1


def test_retries_stop_within_the_total_budget_with_an_error_naming_the_slice(served):
    served.inject("503", times=10_000, endpoint="api_GET")
    http = client(served, max_attempts=10_000, max_total_seconds=1.0)
    with pytest.raises(SourceUnavailable) as failure:
        year_get(http, served)
    message = str(failure.value)
    assert message.startswith(f"{WHAT}: gave up after ")
    assert "HTTP 503" in message
    assert 1 < len(http.waits) + 1 < 10_000
    assert sum(http.waits) < 1.0  # no retry was started whose wait would cross the budget
    assert served.api_key not in message


def test_transport_errors_quoting_the_url_do_not_leak_the_key():
    secret = "k3y/with+odd=chars&more"
    http = HttpClient(secrets=[secret], max_attempts=2, min_delay=MIN_DELAY, connect_timeout=2)
    with pytest.raises(SourceUnavailable) as failure:
        http.get("http://127.0.0.1:1/api/api_GET/", [("key", secret)], what=WHAT)
    message = str(failure.value)
    assert "ConnectionError" in message and "***" in message
    assert secret not in message
    assert "k3y%2Fwith%2Bodd%3Dchars%26more" not in message


def source(standin: NassStandIn, key: str | None = None):
    api = NassApi(api_key=key or standin.api_key, base_url=standin.base_url, min_delay_seconds=0.05)
    return api.source(CONFIG)


def test_401_is_not_retried_and_says_the_key_is_wrong(served):
    wrong = "wrong-key-9999-8888-7777-666666666666"
    with pytest.raises(SourceError) as failure:
        source(served, wrong).count(2019)
    message = str(failure.value)
    assert "rejected the API key" in message and "NASS_API_KEY" in message
    assert "year 2019" in message and wrong not in message
    assert served.stats.total_requests == 1


def test_413_is_not_retried_and_names_the_slice(served):
    nass = source(served)
    part = Slice(key="all", params=nass.year_params(2020), expected_rows=40_000)
    with pytest.raises(SourceError) as failure:
        list(nass.fetch(part))
    message = str(failure.value)
    assert "413" in message and "dataset nass_rel, year 2020" in message
    assert "re-plan" in message and served.api_key not in message
    assert served.stats.total_requests == 1


def test_400_is_not_retried_and_names_the_slice(served):
    nass = source(served)
    params = {**nass.year_params(2019), "state_alpha": ("ZZ",)}  # no data: Quick Stats says 400
    part = Slice(key="state_alpha=ZZ", params=params, expected_rows=5)
    with pytest.raises(SourceError) as failure:
        list(nass.fetch(part))
    message = str(failure.value)
    assert (
        "400" in message
        and "year 2019, slice state_alpha=ZZ" in message
        and served.api_key not in message
    )
    assert served.stats.total_requests == 1
