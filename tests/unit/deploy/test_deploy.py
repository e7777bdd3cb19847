"""The deployment files against the real CLI and settings: the Dockerfile, the compose stack
and the Kubernetes manifests (schema-validated with kubernetes-validate). Docker and a cluster
do not run here, so this is what is checked: every command a container runs parses in the
`connector` CLI, every variable it sets is a real setting, every file it mounts exists, and
probes and scrape targets point at the port the worker serves."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from streams import settings as settings_module
from streams.cli.main import main

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
ROOT = DEPLOY.parent
KUBERNETES_VERSION = "1.31"

#: Variables the image itself sets that are not the connector's settings.
RUNTIME_ENV = {"PATH", "PYTHONUNBUFFERED"}


def setting_names() -> set[str]:
    """Every environment variable some settings class of the connector reads."""
    names = set()
    for cls in vars(settings_module).values():
        if not (isinstance(cls, type) and issubclass(cls, BaseSettings)) or cls is BaseSettings:
            continue
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names.update(str(choice) for choice in alias.choices)
            elif isinstance(alias, str):
                names.add(alias)
            else:
                names.add(f"{prefix}{name}".upper())
    return names


SETTINGS = setting_names()


def parse_cli(args: list[str]) -> click.Context:
    """Parse `connector ARGS` the way the CLI would, without running anything."""
    ctx = click.Context(main, info_name="connector")
    command: click.Command = main
    rest = list(args)
    while isinstance(command, click.Group):
        assert rest, f"`connector {' '.join(args)}` names no command"
        sub = command.get_command(ctx, rest[0])
        assert sub is not None, f"`connector {' '.join(args)}`: no command {rest[0]!r}"
        if isinstance(sub, click.Group):
            ctx = click.Context(sub, info_name=rest[0], parent=ctx)
        else:
            ctx = sub.make_context(rest[0], rest[1:], parent=ctx)
        command, rest = sub, rest[1:]
    return ctx


def test_the_checks_themselves_catch_mistakes() -> None:
    assert {"KAFKA_BOOTSTRAP_SERVERS", "CONNECTOR_METRICS_PORT", "CONNECTOR_DATA_DIR"} <= SETTINGS
    assert "CONNECTOR_NO_SUCH_SETTING" not in SETTINGS
    parse_cli(["receiver", "serve", "--port", "8765"])
    with pytest.raises(click.UsageError):
        parse_cli(["worker", "--no-such-option"])
    with pytest.raises(click.UsageError):
        parse_cli(["worker", "--loglevel", "loud"])
    with pytest.raises(AssertionError):
        parse_cli(["no-such-command"])


# -- Dockerfile -------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            rows.append((instruction.upper(), rest.strip()))
    return rows


def test_the_image_runs_the_cli_as_a_non_root_user_with_a_health_check() -> None:
    rows = dockerfile()
    final = rows[max(i for i, (ins, _) in enumerate(rows) if ins == "FROM") :]
    values = dict(final)
    assert yaml.safe_load(values["ENTRYPOINT"]) == ["connector"]
    parse_cli(yaml.safe_load(values["CMD"]))
    assert values["USER"] not in ("0", "root")
    env = dict(re.findall(r"(\w+)=(\S+)", values["ENV"]))
    assert set(env) - RUNTIME_ENV <= SETTINGS, set(env) - RUNTIME_ENV - SETTINGS
    assert f"127.0.0.1:{env['CONNECTOR_METRICS_PORT']}/health" in values["HEALTHCHECK"]
    for instruction, rest in rows:
        if instruction == "COPY" and not rest.startswith("--from"):
            *sources, _ = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"


# -- compose ----------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def connector_services() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, service in compose()["services"].items():
        if service.get("image", "").startswith("intouch-connector"):
            yield name, service


def test_every_compose_service_runs_a_real_command_with_real_settings() -> None:
    services = dict(connector_services())
    assert {"worker-1", "worker-2", "receiver", "lag-exporter", "turnup", "generate"} <= set(
        services
    )
    for name, service in services.items():
        parse_cli(service["command"])
        env = set(service.get("environment", {}))
        assert env <= SETTINGS, f"{name} sets unknown variables: {env - SETTINGS}"
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    for dependency in ("topics", "turnup"):
        assert dependency in compose()["services"]


def test_compose_mounts_exist_and_prometheus_scrapes_the_workers_ports() -> None:
    services = compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "compose.yml").read_text())
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for config in job["static_configs"]
        for target in config["targets"]
    }
    expected = {
        f"{name}:{services[name]['environment']['CONNECTOR_METRICS_PORT']}"
        for name in ("worker-1", "worker-2")
    }
    command = services["lag-exporter"]["command"]
    expected.add(f"lag-exporter:{command[command.index('--port') + 1]}")
    assert targets == expected


# -- Kubernetes -------------------------------------------------------------------------------


def manifests() -> Iterator[dict[str, Any]]:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    files = [*kustomization["resources"], "secrets.example.yaml"]
    for name in files:
        yield from yaml.safe_load_all((DEPLOY / "k8s" / name).read_text())


def test_the_manifests_are_valid_kubernetes() -> None:
    kinds = []
    for document in manifests():
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
        kinds.append(document["kind"])
    assert {"Deployment", "ConfigMap", "PodDisruptionBudget", "Service", "Secret"} <= set(kinds)


def test_the_manifests_run_real_commands_with_real_settings_and_probe_the_metrics_port() -> None:
    documents = list(manifests())
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    assert set(config) <= SETTINGS, set(config) - SETTINGS
    port = int(config["CONNECTOR_METRICS_PORT"])
    secret_dir = config["CONNECTOR_SECRETS_DIR"]
    for deployment in (d for d in documents if d["kind"] == "Deployment"):
        spec = deployment["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        parse_cli(container["args"])
        env = {e["name"] for e in container.get("env", [])}
        assert env <= SETTINGS, env - SETTINGS
        assert all("secretKeyRef" in e["valueFrom"] for e in container.get("env", []))
        probes = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
        assert probes == {"/health", "/ready"}
        assert container["resources"]["requests"] and container["resources"]["limits"]
        if container["name"] == "worker":
            assert container["ports"][0]["containerPort"] == port
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert {secret_dir, config["CONNECTOR_DATA_DIR"].rsplit("/", 1)[0]} <= mounts


def clean_stop_s(env: dict[str, Any]) -> float:
    """How long a worker's clean stop may take with these settings: it finishes the creates
    under way, each up to the receiver timeout."""
    from streams.worker.app import SHUTDOWN_TIMEOUT

    default = settings_module.PipelineSettings.model_fields["receiver_timeout"].default
    return SHUTDOWN_TIMEOUT + float(env.get("CONNECTOR_RECEIVER_TIMEOUT", default))


def test_a_worker_is_given_the_time_of_a_clean_stop_before_it_is_killed() -> None:
    documents = list(manifests())
    config = next(d for d in documents if d["kind"] == "ConfigMap")["data"]
    workers = [
        d["spec"]["template"]["spec"]
        for d in documents
        if d["kind"] == "Deployment"
        and d["spec"]["template"]["spec"]["containers"][0]["args"][0] == "worker"
    ]
    assert workers
    for spec in workers:
        assert spec["terminationGracePeriodSeconds"] > clean_stop_s(config)
    services = [s for s in compose()["services"].values() if s.get("command", [""])[0] == "worker"]
    assert services
    for service in services:
        grace = re.fullmatch(r"(\d+)s", str(service.get("stop_grace_period", "10s")))
        assert grace is not None
        assert int(grace.group(1)) > clean_stop_s(service.get("environment", {}))


def test_connector_log_level_sets_the_workers_level() -> None:
    from streams.cli.worker import level_name

    assert [level_name(v) for v in ("INFO", "warning", "WARN", "debug")] == [
        "info",
        "warn",
        "warn",
        "debug",
    ]
    with pytest.raises(click.BadParameter, match="CONNECTOR_LOG_LEVEL='loud'"):
        level_name("loud")
