"""``dagster dev`` (webserver + daemon) as a subprocess for UI tests, and the browser to drive it.

Self-contained on purpose: the UI test needs a real webserver and daemon on a free port with a
temporary DAGSTER_HOME, started and stopped around one module, and a headless Chromium from the
system (Debian's ``chromium``; no browser can be downloaded here).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import requests

PROJECT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium (``CHROMIUM`` overrides), or None when none is installed."""
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", "chromium"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dagster_dev(
    env: Mapping[str, str], home: Path, timeout: float = 300.0, instance_yaml: str | None = None
) -> Iterator[str]:
    """Run ``dagster dev`` with ``env`` and ``home`` as DAGSTER_HOME; yield the UI's base URL.

    The instance is the project's ``dagster.yaml``, or ``instance_yaml`` (its text) when given.

    Output goes to ``home/dagster_dev.log``, quoted in the error if the UI never comes up. The
    process group is stopped (SIGINT, then SIGKILL after a grace period) on exit.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").unlink(missing_ok=True)
    if instance_yaml is None:
        (home / "dagster.yaml").symlink_to(PROJECT / "dagster.yaml")  # the project's, as ./run does
    else:
        (home / "dagster.yaml").write_text(instance_yaml)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = home / "dagster_dev.log"
    command = [
        str(Path(sys.executable).with_name("dagster")),
        *("dev", "-w", str(PROJECT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT,
            env={**env, "DAGSTER_HOME": str(home)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(process, url, log_path, timeout)
        yield url
    finally:
        _stop(process)


def _wait_until_up(process: subprocess.Popen, url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}:\n{_tail(log_path)}")
        try:
            if requests.get(f"{url}/server_info", timeout=5).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    raise RuntimeError(f"dagster dev did not answer on {url} in {timeout:.0f}s:\n{_tail(log_path)}")


def _stop(process: subprocess.Popen, grace: float = 30.0) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _tail(path: Path, chars: int = 4000) -> str:
    return path.read_text(errors="replace")[-chars:]
