"""A facts load run as its own process, so the crash tests can SIGKILL it at any point.

``python -m ingest_assets_tests.reliability.load_child URL GENERATION`` replaces year 2000 of
table ``crash_facts`` with the rows of that generation (``rows_for(generation)`` rows, each
tagged with it) through the real loader, in slow batches, and prints ``ready`` once connected.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

import psycopg
import pyarrow as pa

from ingest_assets.cleaning.columns import Column, arrow_schema
from ingest_assets.warehouse import ledger
from ingest_assets.warehouse.loader import Counts, LoadResult, replace_year
from ingest_assets.warehouse.tables import FactsTable

YEAR = 2000
BATCHES = 30
TARGET = FactsTable(
    "public",
    "crash_facts",
    (Column("year", "integer"), Column("gen", "integer"), Column("id", "bigint")),
)


def rows_for(generation: int) -> int:
    return 30_000 + 7 * generation


def batches(generation: int, delay: float) -> Iterator[pa.RecordBatch]:
    total = rows_for(generation)
    step = -(-total // BATCHES)
    for start in range(0, total, step):
        ids = list(range(start, min(start + step, total)))
        columns = [[YEAR] * len(ids), [generation] * len(ids), ids]
        yield pa.RecordBatch.from_arrays(
            [
                pa.array(c, f.type)
                for c, f in zip(columns, arrow_schema(TARGET.columns), strict=True)
            ],
            schema=arrow_schema(TARGET.columns),
        )
        time.sleep(delay)


def entry(generation: int) -> ledger.LedgerEntry:
    n = rows_for(generation)
    started = datetime.now(UTC)
    return ledger.LedgerEntry(
        "crash", "public.crash_facts", YEAR, f"gen-{generation}", "full", started, n, n, n
    )


def load(conn: psycopg.Connection, generation: int, rows: Iterable[pa.RecordBatch]) -> LoadResult:
    n = rows_for(generation)
    return replace_year(conn, TARGET, YEAR, rows, Counts(n, n, n), entry(generation))


def main() -> None:
    url, generation = sys.argv[1], int(sys.argv[2])
    with psycopg.connect(url) as conn:
        print("ready", flush=True)
        result = load(conn, generation, batches(generation, 0.01))
    print("committed" if result.committed else "rolled back", flush=True)


if __name__ == "__main__":
    main()
