"""The README's commands, run as a new user would: verbatim, offline, without keys.

``README_COMMANDS`` is the checked list of every command in README.md's ```bash blocks, each
with how this test runs it; the first test fails when the README and the list disagree, the
second runs them in a subprocess on a temporary INGEST_HOME (``./run dev`` started, probed and
stopped; ``./run test`` narrowed to one module; the benchmark at a tiny size).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

PROJECT = Path(__file__).resolve().parents[1]
VERBATIM, NARROWED, PROBED, NOT_OFFLINE = "verbatim", "narrowed", "probed", "needs a real key"
CREDENTIALS = ("NASS_API_KEY", "NASS_BASE_URL", "SOCRATA_APP_TOKEN", "SOCRATA_BASE_URL")
# README command -> (how it runs here, the command run); in README order within each block.
README_COMMANDS: dict[str, tuple[str, str]] = {
    "./run demo": (VERBATIM, "./run demo"),
    "./run test": (NARROWED, "./run test -q ingest_assets_tests/test_catalog.py"),
    "./run dev": (PROBED, "./run dev -- -p {port}"),
    'eval "$(./run ingest-assets standin --background)"': (VERBATIM, ""),
    "./run dagster asset materialize -m ingest_assets.definitions "
    "--select 'key:nass_crops_county/raw_pages+' --partition 2023": (VERBATIM, ""),
    "./run ingest-assets standin --stop": (VERBATIM, ""),
    "./run ingest-assets status": (VERBATIM, ""),
    "./run ingest-assets psql -c 'select count(*) from facts_data'": (VERBATIM, ""),
    "export NASS_API_KEY=...": (NOT_OFFLINE, ""),
    "./run demo ": (NOT_OFFLINE, ""),  # (the same demo with the real key: the block above)
    ".ci/run": (NARROWED, "./run dg check defs"),  # the rest of .ci/run is ./run test
    "./run bench --rows 1000000 --out bench.json": (
        NARROWED,
        "./run bench --rows 2000 --out {home}/bench.json",
    ),
}


def readme_commands() -> list[str]:
    """Every command of README.md's bash blocks: continuations joined, comments dropped."""
    text = (PROJECT / "README.md").read_text()
    commands = []
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    inline = re.findall(r"`(\./run bench [^`]*)`", text)
    for block in blocks:
        for command in block.replace("\\\n", " ").splitlines():
            command = re.sub(r"\s+#.*$", "", command).strip()
            if command:
                commands.append(re.sub(r"\s+", " ", command))
    return commands + inline


def test_the_checked_list_is_the_readmes_commands():
    assert readme_commands() == [command.strip() for command in README_COMMANDS]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _probe_dev(command: str, env: dict[str, str], log: Path, timeout: float = 300) -> None:
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command.format(port=port), shell=True, cwd=PROJECT, env=env, start_new_session=True,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.poll() is None, f"./run dev exited: {log.read_text()[-3000:]}"
            try:
                info = requests.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={
                        "query": "{ workspaceOrError { ... on Workspace { locationEntries "
                        "{ name } } } }"
                    },
                    timeout=5,
                ).json()
                names = [e["name"] for e in info["data"]["workspaceOrError"]["locationEntries"]]
                assert names == ["ingest_assets"]
                return
            except (requests.RequestException, KeyError, TypeError):
                time.sleep(2)
        raise AssertionError("./run dev did not answer")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
            process.wait(60)


@pytest.mark.slow
def test_the_readme_commands_work_offline_without_keys(tmp_path: Path):
    home = tmp_path / "ingest"
    env = {k: v for k, v in os.environ.items() if k not in (*CREDENTIALS, "DAGSTER_HOME")}
    env["INGEST_HOME"] = str(home)
    script = []
    try:
        for command, (how, replacement) in README_COMMANDS.items():
            if how == NOT_OFFLINE:
                continue
            run = (replacement or command).format(home=home, port="{port}")
            if how == PROBED:
                _probe_dev(run, env, tmp_path / "dev.log")
                continue
            script.append(run)
        # one shell, in README order, as a user types them (the eval's exports carry on)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", "\n".join(script)],
            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "60,000" in done.stdout and "loaded" in done.stdout  # the demo's 2023 and status
        assert "stop it with `./run ingest-assets stop-db`" in done.stdout
    finally:
        subprocess.run(["./run", "ingest-assets", "standin", "--stop"], cwd=PROJECT, env=env)
        subprocess.run(["./run", "ingest-assets", "stop-db"], cwd=PROJECT, env=env)
