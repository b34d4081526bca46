"""The Docker and Kubernetes deployments validate against Dagster's own config schemas.

No cluster or Docker daemon runs here, so each ``deploy/<target>/dagster.yaml`` goes through the
same checks Dagster applies when an instance loads it: the instance schema, then each pluggable
class's own ``config_type()`` (run launcher, storage). Every variable the files read is listed in
the target's ``env.example``, so an operator's checklist cannot fall behind the config.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import validate_config
from dagster._config.field import resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster._core.workspace.config_schema import ensure_workspace_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
LAUNCHERS = {"k8s": "K8sRunLauncher", "docker": "DockerRunLauncher"}
# What a step reads wherever it runs: storage, warehouse, shared staging, the API key.
STEP_SETTINGS = {"DAGSTER_PG_URL", "DATABASE_URL", "INGEST_STAGING", "NASS_API_KEY"}


def class_config_errors(section: dict[str, Any]) -> list[str]:
    """Validate a ``{module, class, config}`` block against the class's own config schema."""
    cls = getattr(importlib.import_module(section["module"]), section["class"])
    result = validate_config(resolve_to_config_type(cls.config_type()), section.get("config"))
    return [error.message for error in result.errors or []]


def referenced_variables(text: str) -> set[str]:
    """``{env: NAME}`` references plus the names in run launcher ``env_vars`` lists."""
    names = set(re.findall(r"\{env:\s*([A-Z0-9_]+)\}", text))
    config = yaml.safe_load(text)["run_launcher"]["config"]
    names |= {item.split("=", 1)[0] for item in config.get("env_vars", [])}
    return names


def documented_variables(target: str) -> set[str]:
    lines = (DEPLOY / target / "env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"[A-Z0-9_]+=", line)}


@pytest.mark.parametrize("target", sorted(LAUNCHERS))
def test_instance_config_validates_with_dagster_schemas(target):
    config, _ = dagster_instance_config(str(DEPLOY / target))
    launcher = config["run_launcher"]
    assert launcher["class"] == LAUNCHERS[target]
    assert class_config_errors(launcher) == []
    assert class_config_errors(config["storage"]["custom"]) == []
    assert config["storage"]["custom"]["config"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}


@pytest.mark.parametrize("target", sorted(LAUNCHERS))
def test_every_variable_the_config_reads_is_documented(target):
    text = (DEPLOY / target / "dagster.yaml").read_text()
    documented = documented_variables(target)
    assert referenced_variables(text) <= documented
    assert documented >= STEP_SETTINGS


def test_k8s_pods_get_the_shared_settings_and_the_step_executor():
    config = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text())["run_launcher"]
    env_vars = config["config"]["env_vars"]
    assert "INGEST_EXECUTOR=k8s" in env_vars and "INGEST_STAGING" in env_vars
    assert config["config"]["env_secrets"] == ["ingest-secrets"]


def test_docker_run_containers_get_every_step_setting():
    config = yaml.safe_load((DEPLOY / "docker" / "dagster.yaml").read_text())["run_launcher"]
    assert set(config["config"]["env_vars"]) >= STEP_SETTINGS


def test_docker_workspace_validates():
    path = DEPLOY / "docker" / "workspace.yaml"
    config = ensure_workspace_config(yaml.safe_load(path.read_text()), str(path))
    [location] = config["load_from"]
    assert location["grpc_server"]["host"] == "code"


def test_a_mistake_in_a_launcher_config_is_caught():
    launcher = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text())["run_launcher"]
    del launcher["config"]["instance_config_map"]
    launcher["config"]["job_namespaces"] = "typo"
    errors = class_config_errors(launcher)
    assert any("instance_config_map" in error for error in errors)
    assert any("job_namespaces" in error for error in errors)
