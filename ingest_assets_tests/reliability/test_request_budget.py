"""The deployment-wide request budget, spent by several OS processes against a stand-in.

Each child process (``budget_child``) has its own HTTP client and database session; only the
budget rows in the test's warehouse database are shared. The stand-in records when each request
arrived and from which process, so the tests measure the rate and concurrency the host saw.
"""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from ingest_assets.request_budget import RequestBudget, host_key, parse_budgets
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import LoggedRequest, NassStandIn

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2019: 50})) as server:
        yield server


@pytest.fixture
def served(standin, tally):
    standin.clear_faults()
    standin.reset_stats()
    standin.latency = 0.0
    yield standin
    tally.add("faults_injected", sum(standin.stats.faults_served.values()))
    standin.clear_faults()
    standin.latency = 0.0


def run_children(
    warehouse_url: str,
    standin: NassStandIn,
    budgets: dict,
    children: list[tuple[str, str, int, float]],
) -> list[str]:
    """Start one process per (name, endpoint, count, delay) at once; wait for all of them."""
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ingest_assets_tests.reliability.budget_child",
                warehouse_url,
                orjson.dumps(budgets).decode(),
                f"{standin.base_url}/{endpoint}/",
                standin.api_key,
                name,
                str(count),
                str(delay),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, endpoint, count, delay in children
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        outputs.append(out.strip())
    return outputs


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The most requests that arrived within any `seconds`-long window."""
    times = sorted(times)
    start, most = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


def arrivals(requests: list[LoggedRequest], client: str | None = None) -> list[float]:
    return sorted(r.started_at for r in requests if client is None or r.client == client)


RATE = {"requests": 8, "per_seconds": 1.0, "burst": 1, "concurrency": 2}


def test_several_processes_together_stay_within_the_hosts_rate_and_concurrency(
    served, warehouse_url, tally
):
    served.latency = 0.2  # slow enough that three processes would overlap without the budget
    children = [(f"proc-{i}", "get_counts", 6, 0.0) for i in range(3)]
    other_host = {"quickstats.nass.usda.gov": RATE}  # the stand-in's host stays unmetered
    run_children(warehouse_url, served, other_host, children)
    unmetered_peak = served.stats.peak_concurrency
    unmetered_most = most_in_any_window(arrivals(served.stats.requests), RATE["per_seconds"])
    served.reset_stats()

    budgets = {host_key(served.base_url): RATE}
    run_children(warehouse_url, served, budgets, children)
    requests = served.stats.requests
    most = most_in_any_window(arrivals(requests), RATE["per_seconds"])
    print(
        f"\nbudget {RATE['requests']}/{RATE['per_seconds']}s, concurrency {RATE['concurrency']}: "
        f"metered: most in any second {most}, peak concurrency {served.stats.peak_concurrency}; "
        f"unmetered reference: {unmetered_most} and {unmetered_peak}"
    )
    tally.add("budget_processes", 3)
    assert len(requests) == 18 and {r.client for r in requests} == {"proc-0", "proc-1", "proc-2"}
    # the reference run shows the stand-in would have seen more without the budget
    assert unmetered_peak == 3 and unmetered_most > RATE["requests"] + RATE["burst"]
    assert served.stats.peak_concurrency <= RATE["concurrency"]
    # a window holds at most `requests` + `burst` arrivals (the fencepost, given arrival jitter)
    assert most <= RATE["requests"] + RATE["burst"]


def test_a_burst_of_429s_slows_every_process_not_only_the_one_that_got_them(
    served, warehouse_url, tally
):
    budget = {"requests": 20, "per_seconds": 1.0, "burst": 1, "concurrency": 4, "recovery": 0.02}
    budgets = {host_key(served.base_url): budget}
    # Only the late process asks get_param_values, so only it is answered 429; the first
    # 429 asks for 2 s of quiet (Retry-After), the other two give no hint.
    served.inject("429-retry-after-2", times=1, endpoint="get_param_values")
    served.inject("429", times=2, endpoint="get_param_values")
    children = [
        ("steady-a", "get_counts", 30, 0.0),
        ("steady-b", "get_counts", 30, 0.0),
        ("throttled", "get_param_values", 2, 0.8),
    ]
    run_children(warehouse_url, served, budgets, children)
    requests = served.stats.requests
    throttled_at = sorted(r.started_at for r in requests if r.status == 429)
    assert len(throttled_at) == 3
    assert {r.client for r in requests if r.status == 429} == {"throttled"}
    first, last = throttled_at[0], throttled_at[-1]
    rates = {}
    for client in ("steady-a", "steady-b"):
        times = arrivals(requests, client)
        before = sum(first - 1.0 <= t < first for t in times)
        after = sum(last <= t < last + 1.0 for t in times)
        rates[client] = (before, after)
    quiet = [t - throttled_at[0] for t in arrivals(requests) if throttled_at[0] < t < last]
    print(f"\nrequests per second before/after 3 x 429 to another process: {rates}")
    tally.add("rate_drops_shared", sum(after * 2 < before for before, after in rates.values()))
    for client, (before, after) in rates.items():
        assert before >= 5, f"{client} never reached its rate before the 429s"
        assert after * 2 < before, f"{client} did not slow down: {before}/s before, {after}/s after"
    # Retry-After: 2 — within the 2 s after the first 429 only requests already granted before
    # it was reported went out (at most one per concurrency slot); nothing newer
    early = [t for t in quiet if t < 1.9]
    print(f"requests within Retry-After (granted before the 429 was reported): {len(early)}")
    assert len(early) <= budget["concurrency"]
    assert quiet and max(quiet) > 1.9
    state = RequestBudget(warehouse_url, parse_budgets(budgets)).state(served.base_url)
    assert state is not None and state["throttles"] == 3 and state["in_flight"] == 0
