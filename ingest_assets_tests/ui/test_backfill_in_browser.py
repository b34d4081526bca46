"""A three-year backfill launched through the Dagster UI in a real browser, end to end.

``dagster dev`` (webserver + daemon) runs on a real PostgreSQL instance storage and the NASS
stand-in; headless Chromium opens the dataset's asset graph, clicks **Materialize all…**, types the
partition range, clicks **Launch backfill**, follows the backfill until it finishes, then the test
checks the facts table and the ledger in PostgreSQL and that the reconciliation check shows as
passed for every year in the page. Screenshots of the graph and the finished backfill are saved to
``$INGEST_SCREENSHOTS`` (default: the test's temporary folder); point it at docs/images/ to
refresh the README's pictures.

Without a browser the test skips with a message saying how to get one; in CI (``CI=true``) a
missing browser is a failure, because ``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import psycopg
import pytest

from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.conftest import create_database
from ingest_assets_tests.ui.dagster_dev import CHROMIUM_ARGS, chromium_path, dagster_dev

pytestmark = pytest.mark.slow

DATASET = "nass_crops_county"
RECORDS = {2021: 300, 2022: 400, 2023: 500}
GROUP_PATH = f"/locations/__repository__@ingest_assets/asset-groups/{DATASET}"
BACKFILL_DEADLINE_SECONDS = 900
# What the UI's "Skip" stores (useStateWithStorage("communityNux") in dagster-webserver's bundle).
NUX_SEEN = "window.localStorage.setItem('communityNux', JSON.stringify('1'))"
FINAL_STATUSES = ("Succeeded", "Failed", "Completed with failures", "Canceled", "Cancelled")


@pytest.fixture(scope="module")
def browser_executable() -> str:
    """The system Chromium with Playwright available; skip (locally) or fail (CI) otherwise."""
    path = chromium_path()
    missing = None
    if path is None:
        missing = "no Chromium found (install Debian's `chromium`, or set CHROMIUM=/path)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "Playwright for Python is missing (pip install -e '.[dev]')"
    if missing is None:
        return path
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"CI must run the browser test, but {missing}; .ci/run installs chromium")
    pytest.skip(f"browser test skipped: {missing}")


@pytest.fixture(scope="module")
def dagster_ui(
    browser_executable: str, pg_admin_url: str, tmp_path_factory: pytest.TempPathFactory
):
    """``dagster dev`` on a temporary catalog of one dataset covering 2021-2023."""
    work = tmp_path_factory.mktemp("ui")
    catalog = work / "datasets.yaml"
    catalog.write_text(
        f"datasets:\n  {DATASET}:\n    source: nass\n"
        "    description: USDA NASS Quick Stats survey crop statistics by county\n"
        "    owners: [team:statistics]\n    table: facts_data\n"
        "    start_year: 2021\n    end_year: 2023\n"
        "    query: {source_desc: SURVEY, sector_desc: CROPS, agg_level_desc: COUNTY}\n"
    )
    warehouse = create_database(pg_admin_url, "warehouse")
    storage = create_database(pg_admin_url, "dagster_ui")
    with NassStandIn(NassDataset(records_per_year=RECORDS)) as standin:
        env = {
            **os.environ,
            "INGEST_DATASETS": str(catalog),
            "INGEST_STAGING": str(work / "staging"),
            "DATABASE_URL": warehouse,
            "DAGSTER_PG_URL": "postgresql+psycopg2://" + storage.removeprefix("postgresql://"),
            "NASS_API_KEY": standin.api_key,
            "NASS_BASE_URL": standin.base_url,
            "NASS_MIN_INTERVAL_SECONDS": "0",
        }
        with dagster_dev(env, work / "dagster_home") as url:
            yield url, warehouse


def _launch_backfill(page, base_url: str) -> str:
    """Materialize all… → Custom range 2021…2023 → Launch backfill; return the backfill id."""
    page.goto(base_url + GROUP_PATH)
    dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize 3 assets")
    page.get_by_role("button", name="Materialize all").click(timeout=120_000)
    dialog.wait_for(timeout=60_000)
    dialog.get_by_role("button", name="Custom").click()
    years = dialog.get_by_placeholder(re.compile(r"^ex: "))
    years.fill(f"[{min(RECORDS)}...{max(RECORDS)}]")
    years.press("Enter")
    dialog.get_by_text(f"{len(RECORDS)} partitions", exact=True).wait_for()
    dialog.get_by_role("button", name="Launch backfill").click()
    toast = page.locator('a[href*="/runs/b/"]').first  # "Created backfill … View"
    href = toast.get_attribute("href", timeout=60_000) or ""
    match = re.search(r"/runs/b/(\w+)", href)
    assert match, f"no link to the created backfill in the toast (got {href!r})"
    return match.group(1)


def _wait_for_backfill(page, base_url: str, backfill: str) -> str:
    deadline = time.monotonic() + BACKFILL_DEADLINE_SECONDS
    status = "not shown"
    while time.monotonic() < deadline:
        page.goto(f"{base_url}/runs/b/{backfill}")
        page.get_by_text("Partition selection").wait_for(timeout=60_000)
        text = page.locator("body").inner_text()
        found = re.search(r"\bStatus\s*\n\s*([A-Za-z ]+)", text)
        status = found.group(1).strip() if found else "not shown"
        if status in FINAL_STATUSES:
            return status
        time.sleep(5)
    raise AssertionError(
        f"backfill {backfill} not finished after {BACKFILL_DEADLINE_SECONDS}s; status {status}"
    )


def test_a_three_year_backfill_from_the_ui_lands_and_shows_its_checks_passed(
    browser_executable, dagster_ui, tmp_path
):
    from playwright.sync_api import sync_playwright

    base_url, warehouse = dagster_ui
    images = Path(os.environ.get("INGEST_SCREENSHOTS") or tmp_path)
    images.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60_000)
            # Dagster's first-visit "join the community" dialog opens over the page at a random
            # moment and swallowed clicks (even its own Skip button sat under the launch dialog):
            # mark it seen, as its Skip button would, before any page loads.
            page.add_init_script(NUX_SEEN)

            backfill = _launch_backfill(page, base_url)
            status = _wait_for_backfill(page, base_url, backfill)
            page.screenshot(path=str(images / "backfill_finished.png"))
            assert status == "Succeeded", f"backfill {backfill} ended {status}"
            assert not page.get_by_role("button", name="Skip").is_visible(), "community pop-up"
            body = page.locator("body").inner_text()
            assert body.count("100% completed") == 3, body[-1500:]

            page.goto(base_url + GROUP_PATH)
            facts_node = page.get_by_text("2 / 2 Passed")  # row_counts_reconcile and year_not_empty
            facts_node.wait_for(timeout=120_000)
            page.get_by_text("100% filled").first.wait_for()
            page.screenshot(path=str(images / "asset_graph.png"))

            page.goto(f"{base_url}/assets/{DATASET}/facts?view=checks")
            page.get_by_role("tab", name="Execution history").click()
            rows = page.get_by_role("row")
            for year, count in RECORDS.items():
                message = f"{DATASET} year {year}: {count:,} rows loaded, matching the source"
                row = rows.filter(has_text=message)
                row.wait_for()
                assert "Passed" in row.inner_text(), f"year {year}: {row.inner_text()!r}"
        finally:
            browser.close()

    with psycopg.connect(warehouse) as conn:
        counts = dict(
            conn.execute("SELECT year, count(*) FROM facts_data GROUP BY year").fetchall()
        )
        ledger = conn.execute(
            "SELECT year, status, rows_loaded FROM ingest_meta.load_ledger ORDER BY year"
        ).fetchall()
    assert counts == RECORDS
    assert ledger == [(year, "loaded", count) for year, count in RECORDS.items()]
