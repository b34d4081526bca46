"""The reliability suite's tally: what the tests observed, printed as one line at the end.

Each test records what it actually saw (faults the stand-in served, runs that succeeded under
faults, processes killed, bad inputs refused, rows lost or duplicated, secrets found) *before*
asserting, so the line reports observations, not intentions. It prints in any run that collected
a reliability test — plain ``pytest -q`` as well as ``pytest -m reliability``.

Also here: the environments the data-safety tests (``test_data_safety``, ``test_content``) share,
a folder for the files kind and a Socrata stand-in, each with the warehouse and staging set.
"""

from __future__ import annotations

from collections import Counter

import pytest

from ingest_assets.standin.socrata_server import SocrataStandIn
from ingest_assets.warehouse.shrink import CONFIRM_ENV

FIGURES = (
    "faults_injected",
    "runs_survived",
    "kills_survived",
    "bad_inputs",
    "rows_lost",
    "rows_duplicated",
    "secrets_found",
)
_TALLY: Counter[str] = Counter()
_STARTED: list[bool] = []


class Tally:
    """Adds observed figures to the session's reliability line."""

    def add(self, figure: str, amount: int = 1) -> None:
        if figure not in FIGURES:
            raise KeyError(f"unknown reliability figure {figure!r}; use one of {FIGURES}")
        _TALLY[figure] += amount


@pytest.fixture(scope="session")
def tally() -> Tally:
    _STARTED.append(True)
    return Tally()


def summary_line() -> str:
    return "reliability: " + " ".join(f"{name}={_TALLY[name]}" for name in FIGURES)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _STARTED:
        terminalreporter.write_line(summary_line())


@pytest.fixture
def files_folder(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.delenv(CONFIRM_ENV, raising=False)
    folder = tmp_path / "files"
    folder.mkdir()
    return folder


@pytest.fixture
def socrata(warehouse_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", warehouse_url)
    monkeypatch.setenv("INGEST_STAGING", str(tmp_path / "staging"))
    monkeypatch.delenv("SOCRATA_APP_TOKEN", raising=False)
    with SocrataStandIn() as server:
        monkeypatch.setenv("SOCRATA_BASE_URL", server.base_url)
        yield server
