"""Alert rules under promtool, the Grafana dashboard and docs/metrics.md against the code."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import monitor.metrics as metrics

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
_SUFFIXES = {"counter": ("_total",), "gauge": ("",),
             "histogram": ("_bucket", "_sum", "_count")}


def defined_metrics() -> dict[str, MetricWrapperBase]:
    return {m._name: m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)}


def exported_series() -> set[str]:
    return {m._name + suffix for m in defined_metrics().values()
            for suffix in _SUFFIXES[m._type]}


def recorded() -> set[str]:
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    return {r["record"] for g in groups for r in g["rules"] if "record" in r}


def promtool(*args: str) -> str:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.fail("promtool is missing: apt-get install -y prometheus", pytrace=False)
    run = subprocess.run([exe, *args], cwd=PROM, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def test_rules_are_valid() -> None:
    assert "SUCCESS: 20 rules found" in promtool("check", "rules", "rules.yml")


def test_rules_unit_tests_pass() -> None:
    assert "SUCCESS" in promtool("test", "rules", "rules_test.yml")


def test_prometheus_config_is_valid() -> None:
    assert "is valid prometheus config file syntax" in promtool("check", "config",
                                                                 "prometheus.yml")
    k8s = yaml.safe_load((PROM / "prometheus-k8s.yml").read_text())
    assert k8s["rule_files"] == ["rules.yml"]
    assert k8s["scrape_configs"][0]["kubernetes_sd_configs"] == [{"role": "pod"}]


def test_every_alert_has_a_firing_unit_test() -> None:
    groups = yaml.safe_load((PROM / "rules.yml").read_text())["groups"]
    alerts = {r["alert"] for g in groups for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((PROM / "rules_test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", [])
             if case["exp_alerts"]}
    # Open circuits are a single-threshold rule checked by promtool only.
    assert alerts - fired <= {"CapmonCircuitOpen"}
    assert {"CapmonRecordsDeadLettered", "CapmonTaskFailing",
            "CapmonSourceStale", "CapmonParseErrorsRising", "CapmonDeliveryFailureRatioHigh",
            "CapmonDeadLetters", "CapmonConsumerLagHigh", "CapmonEndToEndLatencyHigh",
            "CapmonAbsent", "CapmonNotReady", "CapmonCannotSee", "CapmonWatchdog"} <= fired


def test_rules_query_only_metrics_that_exist() -> None:
    text = (PROM / "rules.yml").read_text()
    used = set(re.findall(r"\bcapmon_[a-z_]+\b", text))
    assert used and used <= exported_series(), used - exported_series()


def test_dashboard_is_valid_and_queries_only_real_metrics() -> None:
    dash = json.loads((GRAFANA / "dashboard.json").read_text())
    assert dash["uid"] == "capmon-overview"
    panels = [p for p in dash["panels"] if p["type"] != "row"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    assert all(p["targets"] for p in panels)
    for p in dash["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
    used = {name for e in exprs for name in re.findall(r"\bcapmon[_:][a-z0-9_:]+\b", e)}
    unknown = used - exported_series() - recorded()
    assert not unknown, unknown
    # The six areas each have panels.
    titles = " ".join(p["title"] for p in dash["panels"]).lower()
    for area in ("sources", "conditions", "decisions", "deliveries", "latency", "lag"):
        assert area in titles, area


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    dashboards = yaml.safe_load((GRAFANA / "provisioning/dashboards/capmon.yml").read_text())
    assert dashboards["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/capmon"


def test_metrics_doc_matches_the_code() -> None:
    doc = (ROOT / "docs" / "metrics.md").read_text()
    rows = re.findall(r"^\| `(capmon_[a-z_]+)` \| (\w+) \| ([^|]+) \|", doc, re.M)
    documented = {name: (kind, labels.strip()) for name, kind, labels in rows}
    code = {}
    for m in defined_metrics().values():
        name = m._name + ("_total" if m._type == "counter" else "")
        code[name] = (m._type, ", ".join(m._labelnames) or "(none)")
    assert documented == code
