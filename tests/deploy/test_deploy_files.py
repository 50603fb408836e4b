"""The deployment files, checked with what this machine can run (no Docker engine, no cluster).

YAML parses; every command is a real `capmon` subcommand; Kubernetes manifests validate
against the Kubernetes JSON schema (kubernetes-validate, strict) and carry probes, resources
and Secret references; `capmon config check` accepts the configuration each file carries; the
systemd unit passes `systemd-analyze verify`.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from capmon.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30"
ROLES = ("api", "produce", "decide", "deliver")


def config_check(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`capmon config check` in a clean environment holding only `env` (plus PATH)."""
    clean = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), **env}
    return subprocess.run([sys.executable, "-m", "capmon.cli", "config", "check"],
                          cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=60,
                          check=False)


def assert_capmon_command(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"not a capmon command: capmon {shlex.join(argv)}")


# -- Dockerfile ----------------------------------------------------------------

def test_dockerfile_is_multistage_non_root_with_healthcheck(tmp_path: Path) -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln.strip() for ln in text.replace("\\\n", " ").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert len(froms) == 2 and froms[0].endswith(" AS build")
    assert any(ln.startswith("COPY --from=build ") for ln in lines)
    user = next(ln for ln in lines if ln.startswith("USER "))
    assert not user.split()[1].startswith(("0", "root"))
    assert lines[-1] == 'CMD ["run"]' and 'ENTRYPOINT ["capmon"]' in lines
    health = next(ln for ln in lines if ln.startswith("HEALTHCHECK "))
    assert health.endswith('CMD ["capmon", "healthcheck"]')
    assert_capmon_command(["healthcheck"])
    assert_capmon_command(["run"])
    # Every COPY source exists and is let through by .dockerignore.
    allowed = [ln[1:].rstrip("/") for ln in (ROOT / ".dockerignore").read_text().splitlines()
               if ln.startswith("!")]
    for ln in lines:
        if ln.startswith("COPY ") and "--from=" not in ln:
            for src in ln.split()[1:-1]:
                assert (ROOT / src).exists(), src
                assert src.rstrip("/") in allowed, src
    env = dict(re.findall(r"(CAPMON_[A-Z_]+)=(\S+)", text))
    assert env["CAPMON_API_HOST"] == "0.0.0.0"
    result = config_check(env, tmp_path)
    assert result.returncode == 0, result.stderr


# -- compose ----------------------------------------------------------------

def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?error} with test values (no real secrets here)."""
    value = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", lambda m: f"test-{m.group(1).lower()}", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return doc


def test_compose_services_and_commands(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"kafka", "postgres", "migrate", "topics", *ROLES, "prometheus",
                             "grafana"}
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["topics"]["command"] == ["topics", "create"]
    for name in ("migrate", "topics", *ROLES):
        assert_capmon_command(services[name]["command"])
        assert services[name]["build"]["dockerfile"] == "Dockerfile"
        assert (DEPLOY / services[name]["build"]["context"] / "Dockerfile").is_file()
    for role in ROLES:
        assert services[role]["command"] == [role]
        deps = services[role]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["topics"]["condition"] == "service_completed_successfully"
    assert services["api"]["ports"] == ["8080:8080"]


def test_compose_mounts_existing_files(compose: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana"):
        for volume in compose["services"][name]["volumes"]:
            src = volume.split(":")[0]
            if src.startswith("./"):
                assert (DEPLOY / src).exists(), src
    assert (DEPLOY / "capmon.env.example").is_file()


def test_compose_environment_is_valid_capmon_config(compose: dict[str, Any],
                                                    tmp_path: Path) -> None:
    env = {k: interpolate(str(v)) for k, v in compose["services"]["api"]["environment"].items()}
    assert env["CAPMON_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["CAPMON_STORE_URL"].startswith("postgresql+asyncpg://capmon:")
    example = dict(ln.split("=", 1) for ln in (DEPLOY / "capmon.env.example").read_text()
                   .splitlines() if ln and not ln.startswith("#"))
    result = config_check({**env, **example}, tmp_path)
    assert result.returncode == 0, result.stderr
    # A typo in a variable name is caught, not silently ignored.
    typo = config_check({**env, "CAPMON_API_PORTT": "1"}, tmp_path)
    assert typo.returncode != 0 and "CAPMON_API_PORTT" in typo.stderr


# -- Kubernetes ----------------------------------------------------------------

@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            name = doc.get("metadata", {}).get("name", path.stem)
            docs[f"{doc['kind']}/{name}"] = doc
    return docs


def test_k8s_manifests_validate_against_the_schema(manifests: dict[str, dict[str, Any]]) -> None:
    for name, doc in manifests.items():
        if doc["kind"] == "Kustomization":
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name}: {'.'.join(map(str, exc.path))}: {exc.message}")


def test_kustomization_lists_every_manifest(manifests: dict[str, dict[str, Any]]) -> None:
    kust = manifests["Kustomization/kustomization"]
    assert sorted(kust["resources"]) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def pod_container(doc: dict[str, Any]) -> dict[str, Any]:
    containers = doc["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    container: dict[str, Any] = containers[0]
    return container


def test_a_deployment_per_role_with_probes_and_resources(
        manifests: dict[str, dict[str, Any]]) -> None:
    for role in ROLES:
        dep = manifests[f"Deployment/capmon-{role}"]
        c = pod_container(dep)
        assert c["args"] == [role]
        assert_capmon_command(c["args"])
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["port"] in ports
        assert c["livenessProbe"]["httpGet"]["port"] in ports
        # The api role serves on api.port, the others on their ops port.
        assert ports == ({"http": 8080} if role == "api" else {"ops": 9464})
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(next(iter(ports.values())))
        for kind in ("requests", "limits"):
            assert set(c["resources"][kind]) == {"cpu", "memory"}
        sec = c["securityContext"]
        assert sec["readOnlyRootFilesystem"] and not sec["allowPrivilegeEscalation"]
        assert dep["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert all(labels[k] == v for k, v in dep["spec"]["selector"]["matchLabels"].items())


def test_one_image_name_everywhere(manifests: dict[str, dict[str, Any]],
                                   compose: dict[str, Any]) -> None:
    """The image `make image` builds is the one compose runs and the manifests name; the
    kustomization points that name at the operator's registry."""
    version = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    image = f"capmon:{version.group(1)}"
    assert "IMAGE ?= capmon:$(VERSION)" in (ROOT / "Makefile").read_text()
    assert compose["services"]["api"]["image"] == image
    for name, doc in manifests.items():
        if doc["kind"] in ("Deployment", "Job"):
            assert pod_container(doc)["image"] == image, name
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    [rename] = kustomization["images"]
    assert rename["name"] == "capmon" and rename["newTag"] == version.group(1)


def test_secrets_are_references_never_values(manifests: dict[str, dict[str, Any]]) -> None:
    assert not [n for n in manifests if n.startswith("Secret/")]
    for name, doc in manifests.items():
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        env = pod_container(doc)["env"]
        for var in env:
            assert "value" not in var, f"{name}: {var['name']} has a literal value"
            assert var["valueFrom"]["secretKeyRef"]["name"] == "capmon-secrets"
        names = {v["name"] for v in env}
        assert {"CAPMON_STORE_URL", "CAPMON_ADMIN_KEY", "CAPMON_TWILIO_AUTH_TOKEN"} <= names
        if doc["kind"] == "Deployment":  # without it the email channel cannot start
            assert "CAPMON_API_LINK_SECRET" in names


def test_service_pdb_and_jobs(manifests: dict[str, dict[str, Any]]) -> None:
    svc = manifests["Service/capmon-api"]
    api = manifests["Deployment/capmon-api"]
    api_labels = api["spec"]["template"]["metadata"]["labels"]
    assert all(api_labels[k] == v for k, v in svc["spec"]["selector"].items())
    assert svc["spec"]["ports"][0]["targetPort"] == "http"
    pdb = manifests["PodDisruptionBudget/capmon-deliver"]
    deliver_labels = manifests["Deployment/capmon-deliver"]["spec"]["template"]["metadata"][
        "labels"]
    assert pdb["spec"]["minAvailable"] == 1
    assert all(deliver_labels[k] == v for k, v in pdb["spec"]["selector"]["matchLabels"].items())
    assert pod_container(manifests["Job/capmon-migrate"])["args"] == ["db", "upgrade"]
    assert pod_container(manifests["Job/capmon-topics"])["args"] == ["topics", "create"]
    for job in ("capmon-migrate", "capmon-topics"):
        assert_capmon_command(pod_container(manifests[f"Job/{job}"])["args"])


def test_configmap_and_secret_keys_are_valid_capmon_config(
        manifests: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    env = dict(manifests["ConfigMap/capmon-config"]["data"])
    for var in pod_container(manifests["Deployment/capmon-deliver"])["env"]:
        env[var["name"]] = ("postgresql+asyncpg://capmon:x@db/capmon"
                            if var["name"] == "CAPMON_STORE_URL" else "test-secret")
    result = config_check(env, tmp_path)
    assert result.returncode == 0, result.stderr


# -- systemd ----------------------------------------------------------------

def test_systemd_unit_verifies_and_is_hardened(tmp_path: Path) -> None:
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing (Debian package systemd)", pytrace=False)
    text = (DEPLOY / "systemd" / "capmon.service").read_text()
    directives = re.findall(r"^(\w+)=(.*)$", text, re.M)
    starts = [v for k, v in directives if k in ("ExecStart", "ExecStartPre")]
    assert starts[-1] == "/opt/capmon/bin/capmon run"
    for command in starts:
        assert_capmon_command(shlex.split(command)[1:])
    values = dict(directives)
    for key, want in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                      ("PrivateTmp", "yes"), ("CapabilityBoundingSet", ""),
                      ("User", "capmon"), ("StateDirectory", "capmon")):
        assert values[key] == want, key
    # verify needs an executable that exists: point the unit at this interpreter.
    unit = tmp_path / "capmon.service"
    unit.write_text(text.replace("/opt/capmon/bin/capmon", f"{sys.executable} -m capmon.cli"))
    run = subprocess.run([exe, "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0 and not run.stderr.strip(), run.stderr
    env = {k: v for k, v in directives if k == "Environment"}
    assert env  # the unit's own Environment= lines are valid config
    pairs = dict(v.split("=", 1) for k, v in directives if k == "Environment")
    check = config_check(pairs, tmp_path)
    assert check.returncode == 0, check.stderr


# -- capmon healthcheck ----------------------------------------------------------------

async def test_healthcheck_command_against_a_live_and_a_dead_port(tmp_path: Path) -> None:
    async def healthz(_r: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_r: web.Request) -> web.Response:
        return web.json_response({"failed": ["bus"]}, status=503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    async with TestServer(app, host="127.0.0.1") as server:
        async def healthcheck(*args: str) -> tuple[int, str]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "capmon.cli", "healthcheck", *args, cwd=ROOT,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            assert proc.returncode is not None
            return proc.returncode, (out + err).decode()

        dead = str(server.port + 1 if server.port < 65535 else 1)
        code, out = await healthcheck("--port", dead, "--port", str(server.port))
        assert code == 0 and "/healthz: ok" in out
        code, out = await healthcheck("--port", str(server.port), "--ready")
        assert code == 1 and "HTTP 503" in out and "bus" in out
        code, out = await healthcheck("--port", dead)
        assert code == 1
