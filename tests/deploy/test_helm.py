"""The Helm chart (deploy/helm/grantflow), linted and rendered by the real Helm CLI.

Helm is the pinned binary `scripts/install-helm` puts into .venv/bin (`make test` runs it). The
rendered manifests are validated against the strict Kubernetes schemas (kubernetes-validate,
offline) and held to the deployment rules: probes on /healthz and
/readyz, non-root with a read-only root filesystem, secrets only through secretKeyRef, the
IRSA role on the connector's ServiceAccount, migrations before the rollout, a PDB, one image
for the server and the connector, and environment variables and command-line options that
the code actually reads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import typer
import yaml

from grantflow.cli.main import app
from grantflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "grantflow"
ROLE_ARN = "arn:aws:iam::123456789012:role/grantflow-connector"
SECRET_SETTINGS = {
    "GRANTFLOW_DATABASE_URL",
    "GRANTFLOW_ADMIN_TOKEN",
    "GRANTFLOW_OIDC_CLIENT_SECRET",
}
CONNECTOR_SECRETS = {"GRANTFLOW_CONNECTOR_TOKEN", "GRANTFLOW_CONNECTOR_ID"}
FULL = [
    "--set", "ingress.enabled=true",
    "--set", "ingress.className=nginx",
    "--set", "ingress.tls[0].secretName=grantflow-tls",
    "--set", "ingress.tls[0].hosts[0]=grantflow.example.com",
    "--set", "serviceMonitor.enabled=true",
    "--set", "serviceMonitor.labels.release=prometheus",
    "--set", f"connector.serviceAccount.roleArn={ROLE_ARN}",
]  # fmt: skip


def _helm() -> str:
    local = Path(sys.executable).parent / "helm"
    found = str(local) if local.exists() else shutil.which("helm")
    if found:
        return found
    message = "helm is not installed: run `make .venv/bin/helm` (scripts/install-helm)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [_helm(), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _render(*args: str) -> list[dict[str, Any]]:
    out = _run("template", "gf", str(CHART), "--namespace", "iam", *args).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def _containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in _pod_specs(docs):
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{name}/{container['name']}", container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def _server(docs: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = _one(docs, "Deployment", "gf-grantflow")["spec"]["template"][
        "spec"
    ]["containers"][0]
    return container


def _command(path: list[str]) -> Any:
    """A command of the real CLI (typer vendors its own click: duck-typed)."""
    command: Any = typer.main.get_command(app)
    for word in path:
        command = command.commands[word]
    return command


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return _render()


@pytest.fixture(scope="module")
def full() -> list[dict[str, Any]]:
    return _render(*FULL)


def test_helm_lint_passes_with_default_and_full_values() -> None:
    _run("lint", "--strict", str(CHART))
    _run("lint", "--strict", str(CHART), *FULL)
    _run("lint", "--strict", str(CHART), "--set", "migrations.mode=initContainer")


@pytest.mark.parametrize("kubernetes", ["1.25.0", "1.37.0"])
def test_manifests_match_the_kubernetes_schemas(
    kubernetes: str, full: list[dict[str, Any]]
) -> None:
    """Strict OpenAPI schemas of the oldest (Chart.yaml kubeVersion) and newest Kubernetes:
    a misspelt or misplaced field fails here, not at install time."""
    docs = full + _render("--set", "migrations.mode=initContainer")
    checked = set()
    for doc in docs:
        if doc["apiVersion"] == "monitoring.coreos.com/v1":
            continue  # a CRD: no schema in Kubernetes itself (checked field by field below)
        kubernetes_validate.validate(doc, kubernetes, strict=True)
        checked.add(doc["kind"])
    assert checked >= {"Deployment", "Job", "Service", "ServiceAccount", "Ingress"}
    assert "PodDisruptionBudget" in checked
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.25.0-0"


def test_what_each_configuration_renders(
    default: list[dict[str, Any]], full: list[dict[str, Any]]
) -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in default)
    assert kinds == [
        "Deployment/gf-grantflow",
        "Deployment/gf-grantflow-connector",
        "Job/gf-grantflow-migrate",
        "PodDisruptionBudget/gf-grantflow",
        "Service/gf-grantflow",
        "ServiceAccount/gf-grantflow",
        "ServiceAccount/gf-grantflow-connector",
    ]
    extra = {f"{d['kind']}/{d['metadata']['name']}" for d in full} - set(kinds)
    assert extra == {"Ingress/gf-grantflow", "ServiceMonitor/gf-grantflow"}
    assert not [d for d in default + full if d["kind"] in ("Secret", "ConfigMap")]


def test_server_probes_ports_and_service(full: list[dict[str, Any]]) -> None:
    server = _one(full, "Deployment", "gf-grantflow")
    assert server["spec"]["replicas"] >= 2
    (container,) = server["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    (port,) = container["ports"]
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    env = _env(container)
    assert env["GRANTFLOW_PORT"]["value"] == str(port["containerPort"])
    assert env["GRANTFLOW_HOST"]["value"] == "0.0.0.0"  # noqa: S104
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]

    pod_labels = server["spec"]["template"]["metadata"]["labels"]
    service = _one(full, "Service", "gf-grantflow")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    monitor = _one(full, "ServiceMonitor", "gf-grantflow")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    ingress = _one(full, "Ingress", "gf-grantflow")
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "gf-grantflow", "port": {"name": "http"}}
    assert ingress["spec"]["tls"][0]["secretName"] == "grantflow-tls"
    assert env["GRANTFLOW_BASE_URL"]["value"] == f"https://{rule['host']}"


def test_the_pdb_covers_the_server_pods(default: list[dict[str, Any]]) -> None:
    pdb = _one(default, "PodDisruptionBudget", "gf-grantflow")
    server = _one(default, "Deployment", "gf-grantflow")
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["maxUnavailable"] == 1
    connector = _one(default, "Deployment", "gf-grantflow-connector")
    connector_labels = connector["spec"]["template"]["metadata"]["labels"]
    assert not pdb["spec"]["selector"]["matchLabels"].items() <= connector_labels.items()


def test_every_pod_runs_non_root_with_a_read_only_root(full: list[dict[str, Any]]) -> None:
    for name, spec in _pod_specs(full + _render("--set", "migrations.mode=initContainer")):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] != 0, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            # Python needs a writable /tmp; nothing else is writable.
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert mounts == {"/tmp"}, name


def test_secrets_come_only_from_secret_key_refs(full: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for name, container in _containers(full):
        for var, item in _env(container).items():
            if var in SECRET_SETTINGS | CONNECTOR_SECRETS or "TOKEN" in var or "SECRET" in var:
                seen.add(var)
                assert "value" not in item, f"{name}: {var} is inlined"
                ref = item["valueFrom"]["secretKeyRef"]
                assert ref["name"] and ref["key"], name
    assert seen >= SECRET_SETTINGS | CONNECTOR_SECRETS
    # The database URL is required; the optional secrets may be absent from the Secret.
    server = _env(_server(full))
    assert "optional" not in server["GRANTFLOW_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert server["GRANTFLOW_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True

    # Extra secret variables (Slack, SMTP, …) are references too.
    rendered = _render(
        "--set", "extraSecretEnv[0].name=GRANTFLOW_SMTP_PASSWORD",
        "--set", "extraSecretEnv[0].secretName=smtp",
        "--set", "extraSecretEnv[0].key=password",
    )  # fmt: skip
    smtp = _env(_server(rendered))
    assert smtp["GRANTFLOW_SMTP_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "smtp",
        "key": "password",
    }


def test_a_missing_secret_name_fails_the_render() -> None:
    done = _run("template", "gf", str(CHART), "--set", "secrets.existingSecret=", check=False)
    assert done.returncode != 0
    assert "secrets.existingSecret" in done.stderr


def test_server_settings_are_real_settings_with_valid_values(full: list[dict[str, Any]]) -> None:
    fields = set(Settings.model_fields)
    server = _server(full)
    plain: dict[str, str] = {}
    for var, item in _env(server).items():
        assert var.startswith("GRANTFLOW_"), var
        assert var.removeprefix("GRANTFLOW_").lower() in fields, f"{var} is no setting"
        if "value" in item:
            plain[var.removeprefix("GRANTFLOW_").lower()] = item["value"]
    settings = Settings(**{**plain, "database_url": "postgresql+psycopg://gf@db/gf"})
    assert settings.managed_connector is False
    assert settings.cookie_secure is True
    assert settings.proxy_headers is True
    assert "10.0.0.0/8" in settings.forwarded_allow_ips


def test_the_migration_hook_runs_db_upgrade_before_the_rollout(
    default: list[dict[str, Any]],
) -> None:
    job = _one(default, "Job", "gf-grantflow-migrate")
    hooks = set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert hooks == {"pre-install", "pre-upgrade"}
    spec = job["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (container,) = spec["containers"]
    assert container["command"] == ["grantflow", "db", "upgrade"]
    _command(["db", "upgrade"])  # the command exists
    server = _one(default, "Deployment", "gf-grantflow")["spec"]["template"]["spec"]
    assert _env(container) == _env(server["containers"][0])
    assert "initContainers" not in server

    init = _render("--set", "migrations.mode=initContainer")
    assert not [d for d in init if d["kind"] == "Job"]
    pod = _one(init, "Deployment", "gf-grantflow")["spec"]["template"]["spec"]
    (migrate,) = pod["initContainers"]
    assert migrate["command"] == ["grantflow", "db", "upgrade"]
    assert _env(migrate) == _env(pod["containers"][0])

    none = _render("--set", "migrations.mode=none")
    assert not [d for d in none if d["kind"] == "Job"]
    bad = _run("template", "gf", str(CHART), "--set", "migrations.mode=later", check=False)
    assert bad.returncode != 0 and "migrations.mode" in bad.stderr


def test_connector_runs_the_same_image_with_its_irsa_role(full: list[dict[str, Any]]) -> None:
    server = _one(full, "Deployment", "gf-grantflow")["spec"]["template"]["spec"]
    connector = _one(full, "Deployment", "gf-grantflow-connector")["spec"]["template"]["spec"]
    (server_container,) = server["containers"]
    (connector_container,) = connector["containers"]
    assert server_container["image"] == connector_container["image"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == pyproject["project"]["version"]
    assert server_container["image"].endswith(f":{chart['appVersion']}")

    assert server_container["command"] == ["grantflow", "serve"]
    command = connector_container["command"]
    assert command[:3] == ["grantflow", "connector", "run"]
    assert server_container["command"] != command

    # Every option and variable the chart passes is one `grantflow connector run` reads.
    run = _command(["connector", "run"])
    run.make_context("run", [*command[3:], "--url=x", "--id=x", "--token=x"])
    envvars = {p.envvar for p in run.params if getattr(p, "envvar", None)}
    env = _env(connector_container)
    assert set(env) <= envvars
    assert env["GRANTFLOW_URL"]["value"] == "http://gf-grantflow:80"
    assert set(env) >= CONNECTOR_SECRETS

    account = _one(full, "ServiceAccount", connector["serviceAccountName"])
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == ROLE_ARN
    server_account = _one(full, "ServiceAccount", server["serviceAccountName"])
    assert "eks.amazonaws.com/role-arn" not in (server_account["metadata"].get("annotations") or {})


def test_without_a_role_the_connector_has_no_irsa_annotation_and_notes_warn() -> None:
    docs = _render()
    account = _one(docs, "ServiceAccount", "gf-grantflow-connector")
    assert "annotations" not in account["metadata"]
    notes = _run("install", "gf", str(CHART), "--dry-run=client").stdout
    assert "connector.serviceAccount.roleArn is empty" in notes
    notes = _run("install", "gf", str(CHART), "--dry-run=client", *FULL).stdout
    assert f"It runs as the IAM role {ROLE_ARN} (IRSA)" in notes
    assert "logs job/gf-grantflow-migrate" in notes


def test_the_connector_can_be_left_out() -> None:
    docs = _render("--set", "connector.enabled=false")
    assert not [d for d in docs if "connector" in d["metadata"]["name"]]
