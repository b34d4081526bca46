"""Where a dataset's split lives on disk, and the rule that makes the file read once.

``<work_dir>/<dataset>/<version>/`` holds one split: the year parts and ``split.json``;
``current.json`` names the split the year partitions load; ``download-<hash>.txt.gz`` is the
copy of the published file (one per name and ETag, shared by the splits of different queries).
``ensure`` takes a lock, then reuses the current split while the published file's name and ETag
(and the query) are unchanged, and otherwise runs one pass over the copy (what is already in it
is read from disk, only the rest is downloaded) and switches ``current.json`` to it, removing
older splits and copies. So however many runs ask at once, one downloads and the others wait
and reuse; a retried step resumes the copy where the failed one stopped, and a copy the pass
refused (truncated, corrupt, unexpected rows) is removed with it.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ingest_assets.errors import SourceError, SourceUnavailable
from ingest_assets.kinds.nass_bulk.config import NassBulkDatasetConfig
from ingest_assets.kinds.nass_bulk.remote import Download, RemoteFile
from ingest_assets.kinds.nass_bulk.split import (
    PART_SUFFIX,
    SPLIT_MANIFEST,
    run_pass,
    write_manifest,
)

CURRENT = "current.json"


class SplitStore:
    """The splits of one dataset under ``work_dir``."""

    def __init__(self, work_dir: str, config: NassBulkDatasetConfig) -> None:
        self.config = config
        self.root = Path(work_dir) / config.name

    def _version(self, remote: RemoteFile) -> str:
        scope = orjson.dumps(
            [
                remote.version,
                self.config.query,
                self.config.start_year,
                self.config.end_year,
                PART_SUFFIX,  # a split whose parts are in another format is never reused
            ],
            option=orjson.OPT_SORT_KEYS,
        )
        return hashlib.sha256(scope).hexdigest()[:16]

    def copy_path(self, remote: RemoteFile) -> Path:
        """Where the copy of ``remote`` is kept (whole or, after a failed attempt, in part)."""
        digest = hashlib.sha256(remote.version.encode()).hexdigest()[:16]
        return self.root / f"download-{digest}.txt.gz"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def current(self) -> tuple[Path, dict[str, Any]] | None:
        """The folder and manifest of the split the years load, if one was made."""
        pointer = self.root / CURRENT
        if not pointer.exists():
            return None
        folder = self.root / orjson.loads(pointer.read_bytes())["folder"]
        return folder, orjson.loads((folder / SPLIT_MANIFEST).read_bytes())

    def require_current(self) -> tuple[Path, dict[str, Any]]:
        current = self.current()
        if current is None:
            raise SourceError(
                f"dataset {self.config.name}: the bulk file has not been split yet; "
                f"materialize {self.config.name}/bulk_file first"
            )
        return current

    def ensure(
        self,
        remote: RemoteFile,
        open_download: Callable[[RemoteFile, Path], Download],
        log: Callable[[str], None],
    ) -> tuple[dict[str, Any], bool]:
        """The split of ``remote`` (made now unless it exists) and whether it was reused."""
        version = self._version(remote)
        with self._locked():
            current = self.current()
            if current and current[0].name == version:
                log(f"{self.config.name}: {remote.version} already split; reused")
                return current[1], True
            folder = self.root / version
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            copy = self.copy_path(remote)
            try:
                download = open_download(remote, copy)
                manifest = run_pass(self.config, download, remote, folder, log)
            except BaseException as exc:
                shutil.rmtree(folder, ignore_errors=True)
                if isinstance(exc, SourceError) and not isinstance(exc, SourceUnavailable):
                    copy.unlink(missing_ok=True)  # refused: a retry must not trust it
                raise
            write_manifest(folder, manifest)
            (self.root / CURRENT).write_bytes(orjson.dumps({"folder": version}))
            self._remove_others(keep={version, copy.name})
        return manifest, False

    def _remove_others(self, keep: set[str]) -> None:
        for path in self.root.iterdir():
            if path.name in keep:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith("download-"):
                path.unlink(missing_ok=True)
