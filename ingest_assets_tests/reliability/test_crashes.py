"""Killed loads and concurrent loads: a year holds the old rows or the new, never a mix."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ingest_assets_tests.reliability import load_child

pytestmark = pytest.mark.reliability

PROJECT = Path(__file__).resolve().parents[2]
KILLS = 15


def year_state(url: str) -> tuple[int, int, set[int], list[str]]:
    """(rows, distinct ids, generations present, ledger run ids with status 'loaded')."""
    with psycopg.connect(url) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT id) FROM crash_facts WHERE year = %s",
            (load_child.YEAR,),
        ).fetchone()
        gens = {g for (g,) in conn.execute("SELECT DISTINCT gen FROM crash_facts")}
        loaded = [
            r
            for (r,) in conn.execute(
                "SELECT run_id FROM ingest_meta.load_ledger WHERE status = 'loaded' ORDER BY id"
            )
        ]
    return rows, distinct, gens, loaded


def start_load(url: str, generation: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "ingest_assets_tests.reliability.load_child", url, str(generation)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=PROJECT,
    )
    assert child.stdout.readline().strip() == "ready"
    return child


def test_a_load_killed_at_random_points_leaves_old_or_new_rows_and_a_true_ledger(
    warehouse_url, tally
):
    started = time.monotonic()
    first = start_load(warehouse_url, 0)
    assert first.communicate(timeout=300)[0].strip() == "committed"
    duration = time.monotonic() - started  # from spawn to commit: the window kills aim into
    current = 0
    rng = random.Random(20261123)
    outcomes = {"old": 0, "new": 0}
    for generation in range(1, KILLS + 1):
        child = start_load(warehouse_url, generation)
        time.sleep(rng.uniform(0, duration))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        rows, distinct, gens, loaded = year_state(warehouse_url)
        expected = load_child.rows_for(current)
        tally.add("rows_duplicated", rows - distinct)
        if gens == {generation}:  # the kill came after the commit
            current = generation
            expected = load_child.rows_for(generation)
        tally.add("rows_lost", max(0, expected - rows))
        assert gens == {current}, f"kill {generation}: generations {gens} in the year"
        assert rows == distinct == expected
        assert loaded[-1] == f"gen-{current}"  # the ledger agrees with the table
        assert (f"gen-{generation}" in loaded) == (current == generation)
        outcomes["new" if current == generation else "old"] += 1
        tally.add("kills_survived")
    assert outcomes["old"] >= 1  # at least some kills landed inside the load
    with psycopg.connect(warehouse_url) as conn:
        leftovers = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE 'crash_facts%%_load'"
        ).fetchall()
    assert leftovers == []


def test_two_loads_of_the_same_year_queue_instead_of_interleaving(warehouse_url, tally):
    spans: dict[int, list[float]] = {}
    errors: list[BaseException] = []

    def timed(generation: int):
        """The generation's batches, noting when the load pulled the first and the last."""
        for batch in load_child.batches(generation, 0.01):
            spans.setdefault(generation, [time.monotonic()])
            yield batch
        spans[generation].append(time.monotonic())

    def run(generation: int) -> None:
        try:
            with psycopg.connect(warehouse_url) as conn:
                assert load_child.load(conn, generation, timed(generation)).committed
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(g,)) for g in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    (_, a_end), (b_start, _) = sorted(spans.values())
    assert a_end < b_start  # the second load's COPY began only after the first had finished
    rows, distinct, gens, loaded = year_state(warehouse_url)
    last = max(spans, key=lambda g: spans[g][1])
    tally.add("rows_duplicated", rows - distinct)
    assert gens == {last} and rows == distinct == load_child.rows_for(last)
    assert loaded == [f"gen-{g}" for g in sorted(spans, key=lambda g: spans[g][1])]
