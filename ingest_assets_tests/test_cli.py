"""The newcomer's entry points through the real CLIs (``./run dagster``, ``./run ingest-assets``).

Each test runs the command as a person would, in a subprocess, on a temporary INGEST_HOME, and
checks what they see first: one line naming what is wrong and what to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ingest_assets.standin.nass_server import NassStandIn

PROJECT = Path(__file__).resolve().parents[1]
MATERIALIZE = ["./run", "dagster", "asset", "materialize", "-m", "ingest_assets.definitions"]
SELECT = ["--select", "key:nass_crops_county/raw_pages+"]
CREDENTIALS = ("NASS_API_KEY", "NASS_BASE_URL", "SOCRATA_APP_TOKEN", "SOCRATA_BASE_URL")


def _env(home: Path, **extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k not in (*CREDENTIALS, "DAGSTER_HOME")}
    return {**kept, "INGEST_HOME": str(home), **extra}


def _run(
    command: list[str], env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout
    )


def _first_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.strip())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("cli_home")
    yield folder
    _run(["./run", "ingest-assets", "stop-db"], _env(folder))


def test_a_catalog_typo_is_one_line_naming_dataset_and_field(home: Path, tmp_path: Path):
    catalog = (
        (PROJECT / "datasets.yaml").read_text().replace("start_year: 2000", "start_yaer: 2000")
    )
    (tmp_path / "typo.yaml").write_text(catalog)
    done = _run([*MATERIALIZE, *SELECT, "--partition", "2023"],
                _env(home, INGEST_DATASETS=str(tmp_path / "typo.yaml")))  # fmt: skip
    first = _first_line(done.stderr)
    assert done.returncode != 0
    assert first.startswith("error: ") and "'nass_crops_county'" in first
    assert "start_yaer" in done.stderr and "Traceback" not in done.stderr


def test_a_year_outside_the_range_names_the_dataset_and_its_years(home: Path):
    done = _run([*MATERIALIZE, *SELECT, "--partition", "1999"], _env(home))
    first = _first_line(done.stderr)
    assert done.returncode != 0
    assert first.startswith("error: dataset 'nass_crops_county' has the years 2000-")
    assert "1999" in first and "Traceback" not in done.stderr
    demo = _run(["./run", "ingest-assets", "demo", "--years", "1999"], _env(home))
    assert demo.returncode == 2 and _first_line(demo.stderr).startswith(
        "error: dataset 'nass_crops_county' has the years 2000-"
    )


def test_a_bad_database_url_fails_before_any_fetching_with_the_password_redacted(home: Path):
    with NassStandIn() as standin:
        url = "postgresql://loader:s3cret-pw@127.0.0.1:1/warehouse"
        env = _env(home, DATABASE_URL=url, NASS_API_KEY=standin.api_key,
                   NASS_BASE_URL=standin.base_url)  # fmt: skip
        done = _run([*MATERIALIZE, *SELECT, "--partition", "2023"], env)
        requests_made = len(standin.stats.requests)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "DATABASE_URL=postgresql://loader:***@127.0.0.1:1/warehouse" in output
    assert "s3cret-pw" not in output
    assert requests_made == 0  # nothing was fetched


def test_without_a_key_nothing_is_fetched_and_the_error_says_what_to_set(home: Path):
    done = _run([*MATERIALIZE, *SELECT, "--partition", "2023"], _env(home))
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "NASS_API_KEY is not set" in output and "ingest-assets standin" in output


# The request budget lives in the warehouse, which the namespace cannot start: the probe names
# an unused URL for it and sends the request without it (the DNS failure is what is tested).
DNS_PROBE = """
import os
os.environ["DATABASE_URL"] = "postgresql://unused@127.0.0.1:1/unused"
from ingest_assets.catalog import load_catalog
from ingest_assets.kinds.socrata.source import SocrataApi
config = load_catalog()["seattle_pet_licenses"].model_copy(update={"anonymous": True})
source = SocrataApi().source(config)
source.client.budget = None
source.plan(2023)
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare for a network namespace")
def test_an_unresolvable_portal_fails_at_once_without_retries(home: Path):
    """In a network namespace of our own (no DNS), the dataset asking for the real portal.

    (The embedded PostgreSQL cannot start in a user namespace, so this runs the source's plan
    in a subprocess there rather than a whole materialization.)
    """
    done = _run(["unshare", "-rn", "./run", "python", "-c", DNS_PROBE], _env(home))
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot resolve the host data.seattle.gov" in last
    assert "seattle_pet_licenses" in last and "ingest-assets standin" in last
    assert "gave up after" not in done.stderr  # not retried


def test_the_projects_dagster_yaml_is_in_force_over_a_stale_copy(home: Path):
    stale = home / "dagster_home" / "dagster.yaml"
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.unlink(missing_ok=True)
    stale.write_text("telemetry:\n  enabled: false\nrun_queue:\n  max_concurrent_runs: 99\n")
    probe = "import dagster as dg; print(dg.DagsterInstance.get().get_settings('concurrency'))"
    done = _run(["./run", "python", "-c", probe], _env(home))
    project = yaml.safe_load((PROJECT / "dagster.yaml").read_text())
    assert done.returncode == 0, done.stderr
    assert stale.resolve() == (PROJECT / "dagster.yaml").resolve()
    runs = project["concurrency"]["runs"]["max_concurrent_runs"]
    assert f"'max_concurrent_runs': {runs}" in done.stdout and "99" not in done.stdout


def test_standin_status_and_psql(home: Path):
    env = _env(home)
    started = _run(["./run", "ingest-assets", "standin", "--background"], env)
    assert started.returncode == 0, started.stderr
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    assert set(exports) == {"NASS_BASE_URL", "NASS_API_KEY", "NASS_MIN_INTERVAL_SECONDS",
                            "SOCRATA_BASE_URL"}  # fmt: skip
    try:
        env |= exports
        for dataset in ("nass_crops_county", "seattle_pet_licenses"):
            select = ["--select", f"key:{dataset}/raw_pages+", "--partition", "2022"]
            done = _run([*MATERIALIZE, *select], env)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
            assert " DEBUG " not in done.stdout + done.stderr  # runs log at INFO
    finally:
        stopped = _run(["./run", "ingest-assets", "standin", "--stop"], _env(home))
    assert "stand-ins stopped" in stopped.stderr
    status = _run(["./run", "ingest-assets", "status"], env)
    rows = {tuple(line.split()[:2]): line for line in status.stdout.splitlines()[1:]}
    assert "loaded" in rows[("nass_crops_county", "2022")]
    assert "6,000" in rows[("nass_crops_county", "2022")]
    assert "loaded" in rows[("seattle_pet_licenses", "2022")]
    if shutil.which("psql"):
        query = ["-tAc", "select count(*) from facts_data where year = 2022"]
        counted = _run(["./run", "ingest-assets", "psql", *query], env)
        assert counted.stdout.strip() == "6000", counted.stderr
