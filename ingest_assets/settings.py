"""Every environment variable the project reads, typed and described in one model.

Settings were read ad hoc in nine modules and the docs' tables disagreed; here each variable is a
field with its type, default and description, the README's and docs/operations.md's tables are
generated from these fields (``python -m ingest_assets.docs``), and ``current_settings()`` reads the
environment once per process. Secrets are ``SecretStr``, so a printed settings object shows
``**********``; resources still receive them as ``dg.EnvVar`` (see ``secret_reference``), so their
values never land in Dagster's run config.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

if TYPE_CHECKING:
    import dagster as dg


class Settings(BaseSettings):
    """The process's configuration; field names are the variable names in lower case."""

    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, env_ignore_empty=True
    )

    ingest_datasets: str | None = Field(
        None,
        description="The catalog file; default `datasets.yaml` in the working directory, "
        "else the project's.",
    )
    ingest_home: str = Field(
        ".ingest",
        description="Local state: the embedded PostgreSQL's data, the default staging folder "
        "and Dagster home.",
    )
    dagster_home: str | None = Field(
        None,
        description="Dagster's home; the CLI's default `$INGEST_HOME/dagster_home` links to the "
        "project's `dagster.yaml`, so edits to it apply at the next start.",
    )
    ingest_staging: str | None = Field(
        None,
        description="Staged pages and Parquet frames: a folder or any fsspec URL "
        "(`s3://bucket/prefix` with the `s3` extra; credentials and endpoint from the standard "
        "`AWS_*` variables); default `$INGEST_HOME/staging`.",
    )
    database_url: SecretStr | None = Field(
        None,
        description="The warehouse PostgreSQL; default the embedded server's `warehouse` database.",
    )
    dagster_pg_url: SecretStr | None = Field(
        None,
        description="Dagster's run/event storage PostgreSQL; default the embedded server's "
        "`dagster` database.",
    )
    nass_api_key: SecretStr | None = Field(
        None, description="The Quick Stats API key (required for NASS datasets)."
    )
    nass_base_url: str | None = Field(
        None, description="Replaces every NASS dataset's API URL (a stand-in)."
    )
    nass_min_interval_seconds: float = Field(
        0.2, ge=0, description="Least spacing between two NASS requests of one process."
    )
    nass_bulk_url: str | None = Field(
        None,
        description="The page listing NASS's bulk files; default "
        "`https://www.nass.usda.gov/datasets/` (a stand-in's listing in tests).",
    )
    nass_bulk_dir: str | None = Field(
        None,
        description="A local folder for downloaded bulk files and their per-year splits; "
        "default `$INGEST_STAGING/bulk` (`$INGEST_HOME/bulk` when staging is an object store).",
    )
    socrata_app_token: SecretStr | None = Field(
        None, description="A Socrata app token (optional; raises the portal's rate limits)."
    )
    socrata_base_url: str | None = Field(
        None, description="Replaces every Socrata dataset's `https://{domain}` (a stand-in)."
    )
    ingest_confirm_shrink: str = Field(
        "",
        description="Confirms full loads that shrink a year beyond its `max_shrink`: "
        "comma-separated `dataset` or `dataset/year` entries (for `dagster asset materialize`, "
        "which has no `--tags`; otherwise the run tag `ingest/confirm_shrink=true`).",
    )
    ingest_executor: str = Field(
        "in_process",
        description="The step engine: `in_process` (a run's three steps in its own process), "
        "`multiprocess` (a process per step), `celery` or `k8s` (docs/scaling.md).",
    )
    ingest_celery_broker: SecretStr | None = Field(
        None, description="The Celery broker URL (with `INGEST_EXECUTOR=celery`)."
    )
    ingest_celery_backend: SecretStr | None = Field(
        None, description="The Celery result backend URL (with `INGEST_EXECUTOR=celery`)."
    )
    ingest_webhook_url: SecretStr | None = Field(
        None, description="A Slack-compatible webhook for run notifications; unset = off."
    )
    ingest_debug: str | None = Field(
        None, description="Any value: the CLI shows the traceback after its one-line error."
    )
    arrow_default_memory_pool: str | None = Field(
        None,
        description="pyarrow's allocator; when unset the definitions choose jemalloc that "
        "returns freed memory at once.",
    )


class ExplicitSettings(Settings):
    """Settings from the given values alone, the environment ignored: tests build these."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the constructor's values; every environment source is left out."""
        return (init_settings,)


@cache
def _settings_for(environment: tuple[tuple[str, str], ...]) -> Settings:
    return Settings()


def settings_environment() -> tuple[tuple[str, str], ...]:
    """The variables the settings read, with their values: what a cache of anything built
    from the settings is keyed on.
    """
    names = {env_name(field) for field in Settings.model_fields}
    return tuple(sorted((k, v) for k, v in os.environ.items() if k in names))


def current_settings() -> Settings:
    """The settings of this process, parsed once per distinct environment.

    Keyed on the variables' values, so a process that sets one (the CLI starting stand-ins, a
    test) reads the new value instead of a stale copy.
    """
    return _settings_for(settings_environment())


def reset_settings() -> None:
    """Forget parsed settings (they are also re-read whenever a variable's value changes)."""
    _settings_for.cache_clear()


def env_name(field: str) -> str:
    """The environment variable behind a ``Settings`` field."""
    return field.upper()


def secret_reference(field: str, value: SecretStr | None) -> str | dg.EnvVar:
    """What a resource receives for a secret: an env reference, never the value in run config.

    A value that did not come from the environment (settings built directly, as tests do) is
    passed as is, since no variable exists to refer to; unset is the empty string.
    """
    import dagster as dg  # here: the CLI reads settings without importing Dagster

    if value is None:
        return ""
    name = env_name(field)
    if os.environ.get(name) == value.get_secret_value():
        return dg.EnvVar(name)
    return value.get_secret_value()


def plain(value: SecretStr | None) -> str | None:
    """A secret's value where code (not a resource's config) needs it, e.g. a server URL."""
    return value.get_secret_value() if value is not None else None
