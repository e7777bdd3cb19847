"""The shipped Prometheus alerts and Grafana dashboard against a real Prometheus (Debian's
2.42 package, installed on first use), a real worker and the lag exporter.

`promtool` checks the config and rules and runs their unit tests; every metric name in an
alert or a dashboard panel must be one the worker or the exporter really exports; and the
lag alert fires in a live Prometheus when the worker stops while events keep arriving, and
resolves once it is back. For that last test the rules' `for:` durations and range windows
are scaled down (minutes to seconds); their expressions are the shipped ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from streams.kafka.local import free_port
from tests.integration.harness import Pipeline, running_pipeline, user_event, wait_for
from tests.ops_tools import require_tool

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "intouch-connector.json"

#: Series Prometheus makes itself, not any target.
SYNTHETIC = {"up"}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range windows
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text
    )  # label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        if text[match.end() :].lstrip().startswith("(") or match.group(0) in KEYWORDS:
            continue  # a function or an aggregation
        names.add(match.group(0))
    return names


def exported_names(exposition: str) -> set[str]:
    """Every series name a scrape of this exposition can give (with _total, _bucket ...)."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "counter":
                names.update({f"{name}_total", f"{name}_created"})
            elif kind == "histogram":
                names.update({f"{name}_bucket", f"{name}_count", f"{name}_sum"})
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def alert_exprs() -> list[str]:
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_promtool_checks_the_config_and_runs_the_rules_unit_tests() -> None:
    promtool = str(require_tool("promtool"))
    for args in (
        ["check", "config", "prometheus.yml"],
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
    ):
        done = subprocess.run(
            [promtool, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"promtool {' '.join(args)}: {done.stdout}{done.stderr}"


# -- a live worker, the lag exporter and Prometheus ---------------------------------------------


def start_exporter(p: Pipeline, port: int) -> subprocess.Popen[bytes]:
    with (p.workdir / "exporter.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams.cli", "lag-exporter", "--port", str(port),
             "--interval", "0.5"],
            env=p.env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip


@pytest.fixture(scope="module")
def live(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Pipeline, str, str]]:
    """A pipeline whose worker serves /metrics, and a lag exporter for its group."""
    worker_port, exporter_port = free_port(), free_port()
    workdir = tmp_path_factory.mktemp("prometheus")
    settings = {"CONNECTOR_METRICS_PORT": str(worker_port), "CONNECTOR_LAG_INTERVAL": "0.5"}
    with running_pipeline(kafka_bootstrap, workdir, **settings) as p:
        p.add_receiver("prom")
        p.start_worker()
        exporter = start_exporter(p, exporter_port)
        try:
            p.send("UserChanged", user_event("prom", "M0", 1))
            assert p.wait_outcome("prom", "M0", 1)["status"] == "LINKED"
            yield p, f"127.0.0.1:{worker_port}", f"127.0.0.1:{exporter_port}"
        finally:
            exporter.terminate()
            exporter.wait(timeout=30)


def scrape(target: str) -> str | None:
    try:
        return httpx.get(f"http://{target}/metrics", timeout=5).text
    except httpx.TransportError:
        return None


def test_every_metric_name_in_the_alerts_and_dashboard_is_exported(
    live: tuple[Pipeline, str, str],
) -> None:
    _, worker, exporter = live
    worker_text = wait_for("the worker's metrics", lambda: scrape(worker))
    exporter_text = wait_for(
        "the exporter's lag metrics",
        lambda: (text := scrape(exporter)) and "kafka_consumergroup_group_lag{" in text and text,
    )
    exported = exported_names(worker_text) | exported_names(exporter_text) | SYNTHETIC
    for source, exprs in (("alerts.yml", alert_exprs()), ("dashboard", dashboard_exprs())):
        used = set().union(*(metric_names(e) for e in exprs))
        assert {"kafka_consumergroup_group_lag", "connector_breaker_open"} & used, source
        assert used <= exported, f"{source} reads metrics nobody exports: {used - exported}"


def scaled_rules(target: Path) -> None:
    """The shipped rules with `for:` in seconds and every range window 20 s."""
    rules = yaml.safe_load((PROMETHEUS_DIR / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["expr"] = re.sub(r"\[\d+[smh]\]", "[20s]", rule["expr"])
            if "for" in rule:
                rule["for"] = "3s"
    target.write_text(yaml.safe_dump(rules))


def firing(prometheus: str, alertname: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"http://{prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


def test_the_lag_alert_fires_while_the_worker_is_down_and_resolves_after(
    live: tuple[Pipeline, str, str], tmp_path: Path
) -> None:
    p, worker, exporter = live
    binary = str(require_tool("prometheus"))
    scaled_rules(tmp_path / "alerts.yml")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "scrape_configs": [
            {"job_name": "connector-worker", "static_configs": [{"targets": [worker]}]},
            {"job_name": "connector-lag", "static_configs": [{"targets": [exporter]}]},
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    prometheus = f"127.0.0.1:{free_port()}"
    with (tmp_path / "prometheus.log").open("ab") as log:
        server = subprocess.Popen(
            [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address={prometheus}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    stop_sending = threading.Event()
    try:

        def both_targets_up() -> bool:
            try:
                result = httpx.get(
                    f"http://{prometheus}/api/v1/query", params={"query": "up"}, timeout=5
                ).json()["data"]["result"]
            except (httpx.TransportError, KeyError, ValueError):
                return False  # not up yet (no answer, or "Service Unavailable" as text)
            return len(result) == 2 and all(r["value"][1] == "1" for r in result)

        wait_for("Prometheus to scrape the worker and the exporter", both_targets_up)
        assert not firing(prometheus, "ConnectorLagGrowing")

        # The worker stops; InTouch keeps sending.
        p.stop_worker()

        def send() -> None:
            n = 0
            while not stop_sending.wait(0.2):
                n += 1
                p.send("UserChanged", user_event("prom", f"L{n % 50}", 100 + n))
                p.producer.poll(0)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        (alert,) = wait_for(
            "the lag alert to fire", lambda: firing(prometheus, "ConnectorLagGrowing"), 120
        )
        assert alert["labels"]["topic"] == p.topic(p.topics.users_topic)
        assert wait_for("the worker-down alert", lambda: firing(prometheus, "ConnectorWorkerDown"))

        # The worker is back and the backlog drains: the alert resolves.
        stop_sending.set()
        sender.join(timeout=10)
        p.producer.flush(10)
        p.start_worker()
        wait_for(
            "the lag alert to resolve",
            lambda: not firing(prometheus, "ConnectorLagGrowing") or None,
            180,
        )
    finally:
        stop_sending.set()
        server.terminate()
        server.wait(timeout=30)
