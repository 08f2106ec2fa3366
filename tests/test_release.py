"""Release checks: the sdist and wheel build, their metadata passes ``twine check``, and the
wheel installed into a fresh virtual environment (its declared dependencies only, the lock's
versions as constraints) works as a user meets it: Airflow lists the provider, the pytest
plugin loads, an example DAG parses, the extras install, and mypy sees our types."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import airflow_rds_export

pytestmark = pytest.mark.release

REPO = Path(__file__).resolve().parent.parent
UV = ["python3", "-m", "uv"]  # as scripts/bootstrap.sh installs it
UV_ENV = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
UV_ENV.pop("VIRTUAL_ENV", None)


def run(command: list[str], *, timeout: float = 600, **kwargs: object) -> str:
    """Run a command, failing the test with its output when it fails; return its stdout."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    )
    return str(result.stdout)


@dataclass(frozen=True)
class Release:
    sdist: Path
    wheel: Path
    python: Path  # the fresh virtual environment's interpreter, the wheel installed in it
    home: Path  # a throw-away directory to run the user's commands in (AIRFLOW_HOME below)

    def env(self) -> dict[str, str]:
        return {
            **UV_ENV,
            "AIRFLOW_HOME": str(self.home / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PATH": f"{self.python.parent}{os.pathsep}{os.environ['PATH']}",
        }


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Release]:
    root = tmp_path_factory.mktemp("release")
    dist = root / "dist"
    # uv builds the sdist from the tree, then the wheel from the sdist (as pip would).
    run([*UV, "build", "--quiet", "--out-dir", str(dist), str(REPO)], env=UV_ENV)
    [sdist] = dist.glob("*.tar.gz")
    [wheel] = dist.glob("*.whl")
    constraints = root / "constraints.txt"
    constraints.write_text(
        run(
            [
                *UV,
                "export",
                "--frozen",
                "--quiet",
                "--no-hashes",
                "--no-emit-project",
                "--all-extras",
                "--all-groups",
                "--format",
                "requirements.txt",
                "--project",
                str(REPO),
            ],
            env=UV_ENV,
        )
    )
    venv = root / "venv"
    run([*UV, "venv", "--quiet", "--python", "3.11", str(venv)], env=UV_ENV)
    python = venv / "bin" / "python"
    # The wheel with both extras, and pytest (a user of the plugin has it); nothing else.
    run(
        [
            *UV,
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "--constraint",
            str(constraints),
            f"airflow-rds-export[testing,openlineage] @ {wheel.as_uri()}",
            "pytest",
        ],
        env=UV_ENV,
    )
    home = root / "home"
    home.mkdir()
    yield Release(sdist=sdist, wheel=wheel, python=python, home=home)


def test_the_artifacts_carry_the_version_license_and_types(release: Release) -> None:
    version = airflow_rds_export.__version__
    assert release.wheel.name == f"airflow_rds_export-{version}-py3-none-any.whl"
    assert release.sdist.name == f"airflow_rds_export-{version}.tar.gz"
    with zipfile.ZipFile(release.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"airflow_rds_export-{version}.dist-info/METADATA").decode()
        entry_points = wheel.read(
            f"airflow_rds_export-{version}.dist-info/entry_points.txt"
        ).decode()
    assert "airflow_rds_export/py.typed" in names
    assert f"airflow_rds_export-{version}.dist-info/licenses/LICENSE" in names
    assert re.search(r"^License-Expression: Apache-2.0$", metadata, re.M)
    assert re.search(rf"^Version: {re.escape(version)}$", metadata, re.M)
    for group in ("apache_airflow_provider", "airflow.plugins", "pytest11"):
        assert f"[{group}]" in entry_points


def test_twine_accepts_the_metadata(release: Release) -> None:
    twine = Path(sys.executable).with_name("twine")
    output = run([str(twine), "check", "--strict", str(release.sdist), str(release.wheel)])
    assert output.count("PASSED") == 2, output


def test_airflow_lists_the_installed_provider(release: Release) -> None:
    airflow = release.python.with_name("airflow")
    output = run(
        [str(airflow), "providers", "list", "-o", "plain"], env=release.env(), cwd=release.home
    )
    [line] = [line for line in output.splitlines() if line.startswith("airflow-rds-export")]
    assert airflow_rds_export.__version__ in line.split()


def test_the_installed_package_is_the_wheel_with_its_extras(release: Release) -> None:
    code = (
        "import importlib.metadata as m, airflow_rds_export, airflow.providers.openlineage, moto\n"
        "print(airflow_rds_export.__file__)\n"
        "print(m.version('airflow-rds-export'), m.version('moto'),"
        " m.version('apache-airflow-providers-openlineage'))\n"
    )
    output = run([str(release.python), "-c", code], env=release.env(), cwd=release.home)
    location, versions = output.splitlines()
    assert location.startswith(str(release.python.parent.parent)), location
    assert versions.split()[0] == airflow_rds_export.__version__


def test_the_pytest_plugin_loads(release: Release) -> None:
    tests = release.home / "plugin_tests"
    tests.mkdir()
    (tests / "test_uses_the_plugin.py").write_text(
        "from airflow_rds_export.testing import RdsEmulator\n\n"
        "def test_fixture(rds_emulator):\n"
        "    assert isinstance(rds_emulator, RdsEmulator)\n"
    )
    output = run(
        [str(release.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
        env=release.env(),
        cwd=tests,
    )
    assert "1 passed" in output, output


def test_an_example_dag_parses(release: Release) -> None:
    dags = release.home / "dags"
    dags.mkdir()
    shutil.copy(REPO / "example_dags" / "nightly_rds_export.py", dags)
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(dags)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print('DAGS', *sorted(bag.dags))\n"
    )
    output = run([str(release.python), "-c", code], env=release.env(), cwd=release.home)
    assert ["DAGS", "nightly_rds_export"] in [line.split() for line in output.splitlines()]


#: A user's DAG file: one operator call right, one with a string where an int is declared.
TYPED_DAG = """\
from airflow.sdk import dag

from airflow_rds_export.operators import RdsStartExportTaskOperator


@dag(schedule=None)
def typed() -> None:
    RdsStartExportTaskOperator(
        task_id="right",
        export_task_identifier="orders-20260101",
        source_arn="arn:aws:rds:eu-west-1:123456789012:snapshot:rds:orders-2026-01-01-03-00",
        s3_bucket_name="exports",
        iam_role_arn="arn:aws:iam::123456789012:role/export",
        kms_key_id="arn:aws:kms:eu-west-1:123456789012:key/abc",
        waiter_interval=60,
    )
    RdsStartExportTaskOperator(
        task_id="wrong",
        export_task_identifier="orders-20260101",
        source_arn="arn:aws:rds:eu-west-1:123456789012:snapshot:rds:orders-2026-01-01-03-00",
        s3_bucket_name="exports",
        iam_role_arn="arn:aws:iam::123456789012:role/export",
        kms_key_id="arn:aws:kms:eu-west-1:123456789012:key/abc",
        waiter_interval="60",
    )


typed()
"""


def mypy_on_a_users_dag(release: Release, project: Path) -> list[str]:
    """mypy, run as a user runs it on a DAG file, against the fresh venv; its error lines."""
    project.mkdir()
    (project / "typed_dag.py").write_text(TYPED_DAG)
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run(
        [
            str(mypy),
            "--python-executable",
            str(release.python),
            "--no-incremental",
            "--follow-imports=silent",
            "--show-error-codes",
            "typed_dag.py",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=project,
        env={**UV_ENV, "MYPYPATH": ""},
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if ": error:" in line]


def test_mypy_sees_our_types_in_a_users_dag(release: Release) -> None:
    """Against the installed wheel (py.typed), mypy reports the wrong argument type, and
    only that."""
    errors = mypy_on_a_users_dag(release, release.home / "typed_project")
    assert len(errors) == 1, errors
    [error] = errors
    wrong_line = TYPED_DAG.splitlines().index('        waiter_interval="60",') + 1
    assert error.startswith(f"typed_dag.py:{wrong_line}:"), error
    assert '"waiter_interval"' in error and '"str"' in error and '"int"' in error, error
    assert "[arg-type]" in error, error


def test_without_py_typed_mypy_would_not_see_them(release: Release) -> None:
    """The control: the same wheel without its py.typed marker is untyped to mypy (PEP
    561), so the wrong argument passes unnoticed. py.typed is what the check above needs."""
    code = "import airflow_rds_export as p, pathlib; print(pathlib.Path(p.__file__).parent)"
    output = run([str(release.python), "-c", code], env=release.env(), cwd=release.home)
    package = Path(output.splitlines()[-1])
    assert package.is_relative_to(release.python.parent.parent), package
    marker = package / "py.typed"
    marker.rename(package / "py.typed.hidden")
    try:
        errors = mypy_on_a_users_dag(release, release.home / "untyped_project")
    finally:
        (package / "py.typed.hidden").rename(marker)
    assert not any("[arg-type]" in error for error in errors), errors
    assert any("[import-untyped]" in error for error in errors), errors
