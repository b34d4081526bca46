"""A separate OS process spending a host's request budget: the client of the budget tests.

Run as ``python -m ingest_assets_tests.reliability.budget_child DATABASE_URL BUDGETS_JSON URL
KEY NAME COUNT [DELAY]``: after DELAY seconds it GETs URL (a stand-in endpoint) COUNT times
through the shared HTTP client with the budget kept in DATABASE_URL, as User-Agent NAME, so the
stand-in's log tells the processes apart. Prints the seconds it waited for the budget.
"""

from __future__ import annotations

import sys
import time

import orjson

from ingest_assets.http import HttpClient
from ingest_assets.request_budget import RequestBudget, parse_budgets


def main(argv: list[str]) -> None:
    database_url, budgets, url, key, name, count = argv[:6]
    time.sleep(float(argv[6]) if len(argv) > 6 else 0.0)
    budget = RequestBudget(database_url, parse_budgets(orjson.loads(budgets)))
    client = HttpClient(
        secrets=[key], headers={"User-Agent": name}, min_delay=0.05, backoff_cap=0.2, budget=budget
    )
    params = {"key": key, "source_desc": "SURVEY", "year": "2019", "param": "state_alpha"}
    for _ in range(int(count)):
        client.get(url, params, what=f"budget child {name}")
    print(f"{budget.waited_seconds:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
