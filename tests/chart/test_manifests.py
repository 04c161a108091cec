"""The Helm chart's manifests: valid Kubernetes objects for every value set, a locked-down pod
running the connector with its config and secret files, probes on the health port, a grace period
in step with the connector's, and secrets only ever in the Secret."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from connector.errors import ConfigError
from connector.settings.load import load_settings
from tests.chart.render import (
    CHART_DIR,
    CONFIG,
    CREATED_SECRET,
    EXISTING_SECRET,
    SECRETS,
    VALUE_SETS,
    helm,
    mount_secret,
    render,
    validate,
)

if TYPE_CHECKING:
    from pathlib import Path

SELECTOR = {"app.kubernetes.io/name": "lsq-sink", "app.kubernetes.io/instance": "lsq-sink"}
BASE_KINDS = ["ConfigMap", "Deployment", "Service"]
#: The objects each value set adds to those.
KINDS = {
    "defaults": ["Secret", "ServiceAccount"],
    "created-secret": ["Secret", "ServiceAccount"],
    "existing-secret": ["ServiceAccount"],
    "service-monitor": ["Secret", "ServiceAccount", "ServiceMonitor"],
    "pdb": ["PodDisruptionBudget", "Secret", "ServiceAccount"],
    "three-replicas": ["PodDisruptionBudget", "ServiceAccount"],
    "custom-resources": ["Secret", "ServiceAccount"],
    "every-option": [],
}


def test_chart_lints_clean_in_strict_mode() -> None:
    """`helm lint --strict` finds no error or warning, with the defaults and with a full config."""
    for values in (None, CREATED_SECRET):
        report = helm.lint(CHART_DIR, values, strict=True, kube_version="v1.30.0")
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert (report["errors"], problems) == ([], [])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_manifest_is_a_valid_kubernetes_object(value_set: str) -> None:
    """Each rendered manifest passes the Kubernetes 1.30 schemas in strict mode (the ServiceMonitor
    a structural check), and the set of objects is the one the values ask for."""
    rendered = render(VALUE_SETS[value_set])
    for manifest in rendered.manifests:
        validate(manifest)
    assert sorted(m["kind"] for m in rendered.manifests) == sorted(BASE_KINDS + KINDS[value_set])


def test_validation_rejects_unknown_kinds_and_unknown_fields() -> None:
    """The manifest check itself: a kind without a schema, or a misspelt field, fails the test."""
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(AssertionError, match="unknown kind"):
        validate(widget)
    deployment = render({}).one("Deployment")
    deployment["spec"]["template"]["spec"]["toplogySpreadConstraints"] = []
    with pytest.raises(AssertionError, match=r"not a valid Kubernetes 1\.30\.0 object"):
        validate(deployment)


def test_pod_runs_as_non_root_with_a_read_only_root_and_no_privileges() -> None:
    """UID/GID 10001, seccomp RuntimeDefault, read-only root, no escalation, no capabilities, no
    API token; /tmp is the only writable place."""
    rendered = render({})
    pod, container = rendered.pod, rendered.container
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["privileged"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}} in pod["volumes"]
    tmp = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - the pod's emptyDir, not a temp file
    assert tmp in container["volumeMounts"]


def test_container_runs_the_connector_with_its_config_and_secrets_mounted() -> None:
    """`lsq-sink run --config /etc/lsq-sink/config.yaml --secrets-dir /etc/lsq-sink/secrets`,
    with the ConfigMap's config.yaml and the Secret's files at those paths."""
    rendered = render(CREATED_SECRET)
    pod, container = rendered.pod, rendered.container
    assert container["args"] == [
        "run",
        "--config",
        "/etc/lsq-sink/config.yaml",
        "--secrets-dir",
        "/etc/lsq-sink/secrets",
    ]
    assert "command" not in container  # the image's entrypoint is lsq-sink
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["config"] == {
        "name": "config",
        "mountPath": "/etc/lsq-sink/config.yaml",
        "subPath": "config.yaml",
        "readOnly": True,
    }
    assert mounts["secrets"] == {
        "name": "secrets",
        "mountPath": "/etc/lsq-sink/secrets",
        "readOnly": True,
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    configmap, secret = rendered.one("ConfigMap"), rendered.one("Secret")
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert "config.yaml" in configmap["data"]
    assert volumes["secrets"]["secret"] == {
        "secretName": secret["metadata"]["name"],
        "defaultMode": 0o440,
    }


def test_existing_secret_is_mounted_and_none_is_created() -> None:
    """With credentials.existingSecret the pods mount that Secret and the chart makes none."""
    rendered = render(EXISTING_SECRET)
    assert rendered.all("Secret") == []
    volumes = {v["name"]: v for v in rendered.pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "lsq-sink-credentials"
    assert (
        "checksum/secret"
        not in rendered.one("Deployment")["spec"]["template"]["metadata"]["annotations"]
    )


@pytest.mark.parametrize("health", [{}, {"port": 9500}])
def test_probes_check_livez_and_readyz_on_the_health_port(health: dict[str, Any]) -> None:
    """Liveness on /livez, readiness on /readyz, the optional startup probe on /livez, all on the
    named port that is config.health.port, which the Service targets."""
    port = health.get("port", 9400)
    rendered = render({"config": {"health": health}, "startupProbe": {"enabled": True}})
    container = rendered.container
    assert container["ports"] == [{"name": "health", "containerPort": port, "protocol": "TCP"}]
    paths = {"livenessProbe": "/livez", "readinessProbe": "/readyz", "startupProbe": "/livez"}
    for probe, path in paths.items():
        assert container[probe]["httpGet"] == {"path": path, "port": "health"}
    service = rendered.one("Service")
    assert service["spec"]["ports"] == [
        {"name": "health", "port": 9400, "targetPort": "health", "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == SELECTOR
    assert "startupProbe" not in render({}).container


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, 30),
        ({"config": None}, 30),  # the connector's default grace when config is dropped
        ({"config": {"flow": {"shutdown_grace_seconds": 40.5}}}, 46),
        ({"config": {"flow": {"shutdown_grace_seconds": 0}}, "shutdownMarginSeconds": 10}, 10),
        (CREATED_SECRET | {"shutdownMarginSeconds": 15}, 56),
    ],
)
def test_termination_grace_is_the_connector_grace_plus_the_margin(
    values: dict[str, Any], expected: int
) -> None:
    """terminationGracePeriodSeconds = ceil(config.flow.shutdown_grace_seconds) + margin."""
    assert render(values).pod["terminationGracePeriodSeconds"] == expected


@pytest.mark.parametrize(
    "flow",
    [
        None,
        {"max_in_flight_records": 500},
        {"shutdown_grace_seconds": 0.2},
        {"shutdown_grace_seconds": 59.5},
    ],
)
def test_the_pod_outlives_the_grace_the_connector_loads(
    flow: dict[str, Any] | None, tmp_path: Path
) -> None:
    """The kubelet's SIGKILL comes shutdownMarginSeconds (at least 1 s) or more after the end of
    the grace the connector reads from the rendered ConfigMap, within which it ends its whole
    stop, final flushes included (SPEC §2.10), whatever part of config.flow is given."""
    rendered = render(CREATED_SECRET | {"config": CONFIG | {"flow": flow}})
    config = tmp_path / "config.yaml"
    config.write_text(rendered.one("ConfigMap")["data"]["config.yaml"], encoding="utf-8")
    secrets = mount_secret(tmp_path / "secrets", rendered.secret_files())
    grace = load_settings(config, secrets, environ={}).flow.shutdown_grace_seconds
    margin = rendered.pod["terminationGracePeriodSeconds"] - grace
    assert 5 <= margin < 6


def test_service_links_are_off_because_the_connector_refuses_their_variables(
    tmp_path: Path,
) -> None:
    """A Service named lsq-sink would inject LSQ_SINK_SERVICE_HOST into pods with service links;
    the connector rejects unknown LSQ_SINK_ variables, so the chart turns service links off."""
    rendered = render(CREATED_SECRET)
    assert rendered.one("Service")["metadata"]["name"] == "lsq-sink"
    assert rendered.pod["enableServiceLinks"] is False
    config = tmp_path / "config.yaml"
    config.write_text(rendered.one("ConfigMap")["data"]["config.yaml"], encoding="utf-8")
    secrets = mount_secret(tmp_path / "secrets", rendered.secret_files())
    with pytest.raises(ConfigError, match="LSQ_SINK_SERVICE_HOST"):
        load_settings(config, secrets, environ={"LSQ_SINK_SERVICE_HOST": "10.0.0.1"})


@pytest.mark.parametrize("value_set", ["created-secret", "service-monitor", "every-option"])
def test_secret_values_are_in_no_configmap_or_other_manifest(value_set: str) -> None:
    """The distinctive secret strings appear in no ConfigMap, in no other manifest except the
    Secret (base64-encoded there, as its files), and not in the NOTES."""
    rendered = render(VALUE_SETS[value_set] | {"credentials": CREATED_SECRET["credentials"]})
    for configmap in rendered.all("ConfigMap"):
        text = str(configmap)
        assert [s for s in SECRETS.values() if s in text] == []
    others = [m for m in rendered.manifests if m["kind"] != "Secret"]
    assert [s for s in SECRETS.values() if s in str(others) or s in rendered.notes] == []
    assert rendered.secret_files() == SECRETS


@pytest.mark.parametrize("values", [CREATED_SECRET, EXISTING_SECRET])
def test_rendered_config_and_secret_files_load_with_the_connector(
    values: dict[str, Any], tmp_path: Path
) -> None:
    """The ConfigMap's config.yaml plus the secret files (mounted as the kubelet does) is a valid
    connector configuration, with each secret from its file and the chart's defaults kept."""
    rendered = render(values)
    config = tmp_path / "config.yaml"
    config.write_text(rendered.one("ConfigMap")["data"]["config.yaml"], encoding="utf-8")
    files = rendered.secret_files() if rendered.all("Secret") else SECRETS
    settings = load_settings(config, mount_secret(tmp_path / "secrets", files), environ={})
    account = settings.accounts["main"]
    assert account.access_key.get_secret_value() == SECRETS["accounts__main__access_key"]
    assert account.secret_key.get_secret_value() == SECRETS["accounts__main__secret_key"]
    assert account.api_key is not None
    assert account.api_key.get_secret_value() == SECRETS["accounts__main__api_key"]
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == SECRETS["kafka__sasl_password"]
    assert settings.schema_registry is not None
    assert settings.schema_registry.basic_auth_user_info is not None
    user_info = settings.schema_registry.basic_auth_user_info.get_secret_value()
    assert user_info == SECRETS["schema_registry__basic_auth_user_info"]
    assert str(account.async_host) == "https://asyncapi-in21.leadsquared.com/"
    assert settings.kafka.consumer == {"session.timeout.ms": 45000}
    assert settings.routes[0].mapping.booleans == ("true", "false")
    assert (settings.flow.shutdown_grace_seconds, settings.flow.max_in_flight_bytes) == (
        40.5,
        67108864,
    )
    assert (settings.health.host, settings.health.port) == ("0.0.0.0", 9500)  # noqa: S104 - a pod
    assert settings.logging.format == "json"


@pytest.mark.parametrize(
    ("replicas", "enabled", "expected"),
    [(1, "auto", None), (3, "auto", 1), (1, True, 1), (3, False, None), (0, "auto", None)],
)
def test_disruption_budget_follows_the_replicas_unless_set(
    replicas: int, enabled: bool | str, expected: int | None
) -> None:
    """With "auto" a budget is rendered only for more than one replica; true and false force it."""
    rendered = render({"replicaCount": replicas, "podDisruptionBudget": {"enabled": enabled}})
    assert rendered.one("Deployment")["spec"]["replicas"] == replicas
    budgets = rendered.all("PodDisruptionBudget")
    assert [b["spec"]["maxUnavailable"] for b in budgets] == ([] if expected is None else [1])
    for budget in budgets:
        assert budget["spec"]["selector"] == {"matchLabels": SELECTOR}


def test_service_monitor_scrapes_metrics_through_the_health_service() -> None:
    """The ServiceMonitor selects the chart's Service and scrapes /metrics on its health port."""
    rendered = render(VALUE_SETS["service-monitor"])
    monitor, service = rendered.one("ServiceMonitor"), rendered.one("Service")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selected = monitor["spec"]["selector"]["matchLabels"]
    assert selected.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [
        {"port": "health", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    assert [p["name"] for p in service["spec"]["ports"]] == ["health"]


def test_resources_default_to_requests_and_a_memory_limit_and_can_be_set() -> None:
    """Defaults request CPU and memory and limit memory; custom values replace them."""
    assert render({}).container["resources"] == {
        "requests": {"cpu": "100m", "memory": "192Mi"},
        "limits": {"memory": "384Mi"},
    }
    assert render(VALUE_SETS["custom-resources"]).container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"cpu": 1, "memory": "512Mi"},
    }


def test_a_config_or_secret_change_rolls_the_pods() -> None:
    """The pod template's checksums change with the config and with the chart-made Secret."""

    def checksums(values: dict[str, Any]) -> dict[str, str]:
        meta = render(values).one("Deployment")["spec"]["template"]["metadata"]
        return {k: v for k, v in meta["annotations"].items() if k.startswith("checksum/")}

    base = checksums(CREATED_SECRET)
    config = CONFIG | {"output": {"results_topic": "r2", "dead_letter_topic": "d2"}}
    changed_config = checksums(CREATED_SECRET | {"config": config})
    credentials = CREATED_SECRET["credentials"] | {"kafkaSaslPassword": "rotated"}
    changed_secret = checksums(CREATED_SECRET | {"credentials": credentials})
    assert set(base) == {"checksum/config", "checksum/secret"}
    assert changed_config["checksum/config"] != base["checksum/config"]
    assert changed_config["checksum/secret"] == base["checksum/secret"]
    assert changed_secret["checksum/secret"] != base["checksum/secret"]
    assert changed_secret["checksum/config"] == base["checksum/config"]


def test_notes_name_the_settings_the_connector_still_needs() -> None:
    """With the defaults the NOTES warn which required settings are missing; with a full
    configuration they do not."""
    notes = render({}).notes
    assert "WARNING: the connector will not start" in notes
    for missing in ("config.kafka.bootstrap_servers", "config.routes", "config.output"):
        assert missing in notes
    complete = render(CREATED_SECRET).notes
    assert "WARNING" not in complete
    assert "terminationGracePeriodSeconds 46" in complete
    assert "credentials.accounts.main" in render(CREATED_SECRET | {"credentials": {}}).notes
