"""Run notifications: run status sensors that post a short Slack-compatible message.

The webhook comes from ``INGEST_WEBHOOK_URL`` (read at each evaluation, so setting it needs no
code change); the payload is ``{"text": ...}``, which Slack, Mattermost and most chat webhooks
accept. On failure: the dataset asset, the year and the error (first line, secrets removed), and
the description of every check that did not pass (a refused shrink says "from 1,000 rows to 0
rows"); on success: rows loaded per year, a year that loaded none said plainly as "0 rows — the
year is empty", and any warning check. Without the variable the sensors do nothing and say so
once in the logs. Posting problems are logged, never raised: a down chat server must not stall the
sensors (each run is reported once, whatever happens to the post).
"""

from __future__ import annotations

import logging
import os
import re
from typing import cast

import dagster as dg
import requests
from dagster._core.execution.plan.objects import StepFailureData
from dagster._utils.error import SerializableErrorInfo

from ingest_assets.settings import Settings, plain

WEBHOOK_ENV = "INGEST_WEBHOOK_URL"
POST_TIMEOUT_SECONDS = 10.0
MAX_ERROR_CHARS = 500
_SECRET_NAMES = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
_announced_off = False


def redact(text: str) -> str:
    """Remove the values of secret-looking environment variables and passwords in URLs."""
    for name, value in os.environ.items():
        if _SECRET_NAMES.search(name) and len(value) >= 6:
            text = text.replace(value, "***")
    return _URL_PASSWORD.sub(r"\1***@", text)


def _year(run: dg.DagsterRun) -> str:
    return run.tags.get("dagster/partition", "(no year)")


def _asset_of_step(run: dg.DagsterRun, step_key: str | None) -> str:
    """An asset step's key is the asset key joined with ``__``; runs launched for a selection
    know their keys, others (in-process runs) are mapped back from the step key.
    """
    for key in run.asset_selection or ():
        if "__".join(key.path) == step_key:
            return key.to_user_string()
    return step_key.replace("__", "/") if step_key else "(run)"


def _error_line(error: SerializableErrorInfo | None) -> str:
    if error is None:
        return "unknown error"
    line = (error.message.strip().splitlines() or [""])[0]
    kind, _, rest = line.partition(": ")
    return rest if rest and kind.endswith(error.cls_name or "") else line


def failure_text(context: dg.RunFailureSensorContext) -> str:
    """The failure message: each failed step's asset and first error line, secrets removed."""
    run = context.dagster_run
    lines = [f":red_circle: run {run.run_id[:8]} failed, year {_year(run)}"]
    for event in context.get_step_failure_events():
        data = event.event_specific_data
        message = _error_line(data.error if isinstance(data, StepFailureData) else None)
        asset = _asset_of_step(run, event.step_key)
        lines.append(f"• {asset}: {message[:MAX_ERROR_CHARS]}")
    if len(lines) == 1:
        lines.append(f"• {context.failure_event.message or 'the run failed'}"[:MAX_ERROR_CHARS])
    lines += failed_checks(context.instance, run.run_id)
    return redact("\n".join(lines))


def failed_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """One line per check of the run that did not pass: asset, check name, its description."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    lines = []
    for record in records:
        event = record.event_log_entry.dagster_event
        evaluation = cast(dg.AssetCheckEvaluation, event and event.event_specific_data)
        if not evaluation.passed:
            about = (evaluation.description or "did not pass")[:MAX_ERROR_CHARS]
            asset = evaluation.asset_key.to_user_string()
            lines.append(f"• {asset} check {evaluation.check_name}: {about}")
    return lines


def loaded_rows(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, str, int]]:
    """(asset, year, rows loaded) for each table load the run committed."""
    records = instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    loads = []
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        if materialization and "loaded_rows" in materialization.metadata:
            loads.append(
                (
                    materialization.asset_key.to_user_string(),
                    materialization.partition or "(no year)",
                    int(cast(int, materialization.metadata["loaded_rows"].value)),
                )
            )
    return loads


def success_text(context: dg.RunStatusSensorContext) -> str | None:
    """The success message (rows loaded per asset and year), or None when the run loaded nothing."""
    loads = loaded_rows(context.instance, context.dagster_run.run_id)
    if not loads:
        return None
    lines = [f":large_green_circle: run {context.dagster_run.run_id[:8]} loaded"]
    lines += [
        f"• {asset} {year}: {rows:,} rows" + (" — the year is empty" if rows == 0 else "")
        for asset, year, rows in sorted(loads)
    ]
    lines += failed_checks(context.instance, context.dagster_run.run_id)
    return redact("\n".join(lines))


def concerns_this_project(context: dg.RunStatusSensorContext) -> bool:
    """Whether the run loads this code location's assets, wherever it was launched from.

    The sensors watch every code location (``monitor_all_code_locations``), because a run
    started by ``dagster asset materialize`` or CI carries no code-location origin and a
    sensor watching only its own location never sees it. Runs of other projects sharing the
    instance are left alone: a run is ours when its selected assets (or, for a run without a
    selection, the assets its steps compute) are defined here.
    """
    run, repository = context.dagster_run, context.repository_def
    if repository is None:
        return False
    ours = repository.asset_graph.get_all_asset_keys()
    if run.asset_selection:
        return bool(run.asset_selection & ours)
    snapshot_id = run.execution_plan_snapshot_id
    snapshot = context.instance.get_execution_plan_snapshot(snapshot_id) if snapshot_id else None
    steps = {step.key for step in snapshot.steps} if snapshot else set()
    return any("__".join(key.path) in steps for key in ours)


def post(text: str, log: logging.Logger | dg.DagsterLogManager) -> bool:
    """POST ``{"text": text}`` to the webhook; False (and a log line) when not posted."""
    global _announced_off
    url = plain(Settings().ingest_webhook_url)  # read afresh: set without a restart
    if not url:
        if not _announced_off:
            log.info(f"{WEBHOOK_ENV} is not set: run notifications are off")
            _announced_off = True
        return False
    try:
        response = requests.post(url, json={"text": text}, timeout=POST_TIMEOUT_SECONDS)
        response.raise_for_status()
    except requests.RequestException as exc:
        log.warning(f"could not post the run notification to {WEBHOOK_ENV}: {redact(str(exc))}")
        return False
    return True


@dg.run_failure_sensor(
    name="notify_run_failure",
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
    description=f"Posts the failed asset, year and error to the {WEBHOOK_ENV} webhook "
    "(runs of this project's assets, from the UI, the daemon or the CLI).",
)
def notify_run_failure(context: dg.RunFailureSensorContext) -> None:
    """Post a failed run of this project's assets to the webhook."""
    if concerns_this_project(context):
        post(failure_text(context), context.log)


@dg.run_status_sensor(
    name="notify_run_success",
    run_status=dg.DagsterRunStatus.SUCCESS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    monitor_all_code_locations=True,
    description=f"Posts the rows loaded per year to the {WEBHOOK_ENV} webhook "
    "(runs of this project's assets, from the UI, the daemon or the CLI).",
)
def notify_run_success(context: dg.RunStatusSensorContext) -> None:
    """Post what a successful run of this project's assets loaded."""
    text = success_text(context) if concerns_this_project(context) else None
    if text:
        post(text, context.log)
