"""Rendering the Helm chart for tests: the value sets, the manifests parsed and checked against the
Kubernetes JSON schemas (strict, one fixed Kubernetes version), and accessors the tests share."""

from __future__ import annotations

import base64
import copy
import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

try:
    import helm_python as helm
    import kubernetes_validate  # type: ignore[import-untyped]  # the package ships no type hints
except ImportError as exc:  # the chart tests fail, never skip, without their tools
    raise ImportError(
        f"the chart tests need helm-python-sdk and kubernetes-validate (dev dependencies; "
        f"run `make sync`): {exc}"
    ) from exc

__all__ = [
    "CHART_DIR",
    "CONFIG",
    "CREATED_SECRET",
    "EXISTING_SECRET",
    "SECRETS",
    "VALUE_SETS",
    "Manifest",
    "Rendered",
    "chart",
    "helm",
    "mount_secret",
    "render",
    "validate",
]

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "lsq-sink"
KUBE_VERSION = "1.30.0"
RELEASE = "lsq-sink"
NAMESPACE = "crm"

Manifest = dict[str, Any]

#: Distinctive secret values, by the secret file (and Secret key) that carries each one.
SECRETS = {
    "accounts__main__access_key": "AK-7f3c91-access-distinctive",
    "accounts__main__secret_key": "SK-2b8e44-secret-distinctive",
    "accounts__main__api_key": "API-c0ffee-apikey-distinctive",
    "schema_registry__basic_auth_user_info": "registry-user:REG-5d1a-password-distinctive",
    "kafka__sasl_password": "SASL-9e7b-password-distinctive",
}

#: A realistic connector configuration, as a user would give it in `config:`.
CONFIG: dict[str, Any] = {
    "kafka": {
        "bootstrap_servers": "kafka-1:9092,kafka-2:9092",
        "group_id": "lsq-sink-crm",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_username": "lsq-sink",
        "consumer": {"session.timeout.ms": 45000},
    },
    "schema_registry": {"url": "https://registry:8081"},
    "accounts": {
        "main": {
            "async_host": "https://asyncapi-in21.leadsquared.com",
            "rate_limit": {"calls": 25, "window_seconds": 5},
        }
    },
    "routes": [
        {
            "name": "leads",
            "topics": ["crm.public.leads"],
            "account": "main",
            "mapping": {
                "search_by": "EmailAddress",
                "booleans": ["true", "false"],
                "lead": {"EmailAddress": "email", "Source": {"const": "CRM CDC"}},
            },
        }
    ],
    "output": {"results_topic": "lsq.results", "dead_letter_topic": "lsq.dead-letters"},
    "flow": {"shutdown_grace_seconds": 40.5, "max_in_flight_bytes": 67108864},
    "health": {"port": 9500},
}

CREATED_SECRET: dict[str, Any] = {
    "config": CONFIG,
    "credentials": {
        "accounts": {
            "main": {
                "accessKey": SECRETS["accounts__main__access_key"],
                "secretKey": SECRETS["accounts__main__secret_key"],
                "apiKey": SECRETS["accounts__main__api_key"],
            }
        },
        "schemaRegistryBasicAuthUserInfo": SECRETS["schema_registry__basic_auth_user_info"],
        "kafkaSaslPassword": SECRETS["kafka__sasl_password"],
    },
}
EXISTING_SECRET: dict[str, Any] = {
    "config": CONFIG,
    "credentials": {"existingSecret": "lsq-sink-credentials"},
}

#: The value sets every manifest is rendered and validated with.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "created-secret": CREATED_SECRET,
    "existing-secret": EXISTING_SECRET,
    "service-monitor": CREATED_SECRET
    | {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "pdb": {"podDisruptionBudget": {"enabled": True, "maxUnavailable": "50%"}},
    "three-replicas": EXISTING_SECRET | {"replicaCount": 3},
    "custom-resources": {
        "resources": {
            "requests": {"cpu": "250m", "memory": "256Mi"},
            "limits": {"cpu": 1, "memory": "512Mi"},
        }
    },
    "every-option": EXISTING_SECRET
    | {
        "nameOverride": "sink",
        "image": {"repository": "registry.example.com/lsq-sink", "digest": "sha256:" + "a" * 64},
        "imagePullSecrets": [{"name": "regcred"}],
        "serviceAccount": {"create": False, "name": "crm-sinks"},
        "podAnnotations": {"team": "crm"},
        "podLabels": {"tier": "sink"},
        "startupProbe": {"enabled": True, "failureThreshold": 12},
        "env": [
            {"name": "TZ", "value": "UTC"},
            {
                "name": "LSQ_SINK_KAFKA__SASL_USERNAME",
                "valueFrom": {"secretKeyRef": {"name": "kafka-user", "key": "username"}},
            },
        ],
        "extraVolumes": [{"name": "kafka-ca", "configMap": {"name": "kafka-ca"}}],
        "extraVolumeMounts": [{"name": "kafka-ca", "mountPath": "/etc/kafka-ca", "readOnly": True}],
        "service": {"annotations": {"prometheus.io/scrape": "true"}},
        "priorityClassName": "crm-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "crm", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "topologyKey": "kubernetes.io/hostname",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "sink"}},
                        },
                    }
                ]
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "sink"}},
            }
        ],
    },
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """The manifests of one render, and its NOTES.txt."""

    manifests: list[Manifest]
    notes: str

    def all(self, kind: str) -> list[Manifest]:
        """Every manifest of ``kind``."""
        return [m for m in self.manifests if m["kind"] == kind]

    def one(self, kind: str) -> Manifest:
        """The one manifest of ``kind``."""
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {len(found)}"
        return found[0]

    @property
    def pod(self) -> Manifest:
        """The Deployment's pod spec."""
        spec: Manifest = self.one("Deployment")["spec"]["template"]["spec"]
        return spec

    @property
    def container(self) -> Manifest:
        """The connector's container."""
        containers: list[Manifest] = self.pod["containers"]
        assert len(containers) == 1
        return containers[0]

    def secret_files(self) -> dict[str, str]:
        """The chart-made Secret's data, decoded: secret file name -> content."""
        data: dict[str, str] = self.one("Secret")["data"]
        return {name: base64.b64decode(value).decode() for name, value in data.items()}


@functools.cache
def chart() -> helm.Chart:
    """The chart, loaded once."""
    return helm.Chart.load(CHART_DIR)


def render(values: dict[str, Any], *, release: str = RELEASE) -> Rendered:
    """Render the chart offline with ``values`` (schema-checked by Helm) and parse the output."""
    output = chart().render(copy.deepcopy(values), name=release, namespace=NAMESPACE)
    manifests: list[Manifest] = []
    notes = ""
    for template, text in sorted(output.items()):
        if template.endswith("NOTES.txt"):
            notes = text
        else:
            manifests += [doc for doc in yaml.safe_load_all(text) if doc]
    return Rendered(manifests, notes)


def validate(manifest: Manifest) -> None:
    """Check ``manifest`` against the Kubernetes schemas in strict mode (no unknown fields), or
    structurally for the custom resources the chart renders; any other kind is an error."""
    kind, name = str(manifest.get("kind")), manifest.get("metadata", {}).get("name")
    try:
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        check = _CUSTOM_KINDS.get((manifest["apiVersion"], kind))
        if check is None:
            raise AssertionError(
                f"{manifest['apiVersion']} {kind}/{name}: unknown kind (no Kubernetes "
                f"{KUBE_VERSION} schema and no structural check)"
            ) from None
        check(manifest)
    except kubernetes_validate.ValidationError as exc:
        where = ".".join(str(part) for part in exc.path)
        raise AssertionError(
            f"{kind}/{name} is not a valid Kubernetes {KUBE_VERSION} object: {where}: {exc.message}"
        ) from None


def mount_secret(directory: Path, files: dict[str, str]) -> Path:
    """Write ``files`` the way the kubelet mounts a Secret: in a timestamped hidden directory,
    reached through the ``..data`` link, with one link per key."""
    stamp = directory / "..2026_01_01_00_00_00.000000001"
    stamp.mkdir(parents=True)
    for name, content in files.items():
        (stamp / name).write_text(content, encoding="utf-8")
    (directory / "..data").symlink_to(stamp.name)
    for name in files:
        (directory / name).symlink_to(f"..data/{name}")
    return directory


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def _seconds(duration: str) -> int:
    found = _DURATION.fullmatch(duration)
    assert duration, "an empty duration"
    assert found, f"not a Prometheus duration: {duration!r}"
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return hours * 3600 + minutes * 60 + seconds


def _check_service_monitor(monitor: Manifest) -> None:
    """The ServiceMonitor fields the chart sets, as monitoring.coreos.com/v1 defines them."""
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(monitor["metadata"]) <= {"name", "labels", "annotations"}
    assert all(isinstance(v, str) for v in monitor["metadata"]["labels"].values())
    spec = monitor["spec"]
    assert set(spec) == {"selector", "endpoints"}
    assert set(spec["selector"]) == {"matchLabels"}
    assert all(isinstance(v, str) for v in spec["selector"]["matchLabels"].values())
    assert spec["endpoints"], "a ServiceMonitor needs at least one endpoint"
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert isinstance(endpoint["port"], str)
        assert endpoint["path"].startswith("/")
        assert 0 < _seconds(endpoint["scrapeTimeout"]) <= _seconds(endpoint["interval"])


_CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor"): _check_service_monitor}
