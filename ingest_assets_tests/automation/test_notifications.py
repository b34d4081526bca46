"""Run notifications: a failing and a succeeding run each produce one POST to a local receiver."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import dagster as dg
import pytest

from ingest_assets.automation import notifications
from ingest_assets.dataset import dataset_assets
from ingest_assets.definitions import build_resources
from ingest_assets.kinds.nass.source import NassApi
from ingest_assets.standin.nass_data import NassDataset
from ingest_assets.standin.nass_server import NassStandIn
from ingest_assets_tests.assets.test_nass_pipeline import CONFIG, materialize
from ingest_assets_tests.support.pipeline import nass_resources


class Receiver(ThreadingHTTPServer):
    """A webhook endpoint that keeps every JSON body posted to it."""

    def __init__(self) -> None:
        self.posts: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


@pytest.fixture
def receiver(monkeypatch):
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(notifications.WEBHOOK_ENV, server.url)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def standin():
    with NassStandIn(NassDataset(records_per_year={2019: 300})) as server:
        yield server


@pytest.fixture
def resources(standin, warehouse_url, tmp_path, monkeypatch):
    return nass_resources(monkeypatch, standin, warehouse_url, tmp_path / "staging")


def status_context(instance, result, event, sensor, config=CONFIG):
    """The context the daemon builds for this project's code location (``config``'s assets)."""
    return dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=event,
        repository_def=dg.Definitions(
            assets=dataset_assets(config), resources=build_resources()
        ).get_repository_def(),
    )


def test_a_failing_run_posts_the_asset_year_and_error_once(
    instance, resources, standin, receiver, monkeypatch
):
    secret = "wrong-key-1234-5678-9012-345678901234"
    monkeypatch.setenv("NASS_API_KEY", secret)
    resources = {**resources, "nass_api": NassApi(api_key=secret, base_url=standin.base_url)}
    result = materialize(instance, resources, 2019, raise_on_error=False)
    assert not result.success
    sensor = notifications.notify_run_failure
    context = status_context(instance, result, result.get_run_failure_event(), sensor)
    sensor(context.for_run_failure())
    [post] = receiver.posts
    assert set(post) == {"text"}
    text = post["text"]
    assert "failed, year 2019" in text
    assert "nass_t/raw_pages" in text and "401" in text and "NASS_API_KEY" in text
    assert secret not in text


def test_a_run_of_another_code_locations_assets_is_not_reported(instance, resources, receiver):
    result = materialize(instance, resources, 2019)
    assert result.success
    other = CONFIG.model_copy(update={"name": "elsewhere"})  # a location without nass_t
    sensor, event = notifications.notify_run_success, result.get_run_success_event()
    sensor(status_context(instance, result, event, sensor, other))
    assert receiver.posts == []
    sensor(status_context(instance, result, event, sensor))
    assert len(receiver.posts) == 1  # the same run, seen from its own location


def test_a_successful_run_posts_rows_loaded_per_year(instance, resources, receiver):
    result = materialize(instance, resources, 2019)
    assert result.success
    sensor = notifications.notify_run_success
    sensor(status_context(instance, result, result.get_run_success_event(), sensor))
    [post] = receiver.posts
    assert "nass_t/facts 2019: 300 rows" in post["text"]


def test_without_a_webhook_nothing_is_posted_and_it_is_said_once(monkeypatch, caplog):
    monkeypatch.delenv(notifications.WEBHOOK_ENV, raising=False)
    monkeypatch.setattr(notifications, "_announced_off", False)
    log = dg.get_dagster_logger()
    with caplog.at_level("INFO"):
        assert notifications.post("hello", log) is False
        assert notifications.post("hello again", log) is False
    said = [r for r in caplog.records if notifications.WEBHOOK_ENV in r.getMessage()]
    assert len(said) == 1 and "not set" in said[0].getMessage()


def test_redaction_removes_secret_values_and_url_passwords(monkeypatch):
    monkeypatch.setenv("SOME_API_TOKEN", "tok-abcdef-123")
    text = notifications.redact("token tok-abcdef-123 at postgresql://u:pa55word@host/db failed")
    assert "tok-abcdef-123" not in text and "pa55word" not in text
    assert "postgresql://u:***@host/db" in text
