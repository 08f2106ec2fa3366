"""Run the official Amazon provider's tests of the four RDS export classes against ours.

Our operators and sensors claim to be drop-ins for the Amazon provider's classes of the
same names. This script checks the claim with the provider's own unit tests, unmodified
except for the imports of those four classes:

1. fetch the pinned sdist (``pip download``, once; cached in the temp directory) and
   check its SHA-256 against the one recorded here (the same as ``uv.lock``'s);
2. extract it and copy the two official test modules, and what they import, into a
   fresh directory, switching the imports of ``RdsStartExportTaskOperator``,
   ``RdsCancelExportTaskOperator``, ``RdsSnapshotExistenceSensor`` and
   ``RdsExportTaskExistenceSensor`` to ``airflow_rds_export`` (every other official class
   stays imported from the official provider); a check on the syntax trees proves that
   nothing else changed;
3. run the four test classes with pytest, without the sdist's conftest files (they need
   the Airflow repository's ``tests_common``): the environment their fixtures set is set
   here instead, and the helpers the tests import come from ``tests/upstream/shims``;
4. compare every test's outcome with :data:`EXPECTED`, the one table of which tests pass
   and which fail, and why.

Usage (from the repository root)::

    .venv/bin/python scripts/upstream_tests.py             # our classes; prints the table
    .venv/bin/python scripts/upstream_tests.py --official  # the official classes (baseline)
    .venv/bin/python scripts/upstream_tests.py --json OUT  # also write the results as JSON
    .venv/bin/python scripts/upstream_tests.py --show-diff # the import switch, as a diff

Exit status: 0 when every test ended as :data:`EXPECTED` says (with ``--official``: when
every test passed), 1 when some did not, 2 when the tests could not be run at all.
``tests/test_upstream.py`` runs this script, and the official system-test DAG, in CI.

Environment: ``AIRFLOW_RDS_EXPORT_UPSTREAM_CACHE`` overrides the cache directory;
``AIRFLOW_RDS_EXPORT_UPSTREAM_SDIST`` names a local copy of the sdist (still checked).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parent.parent
SHIMS = REPO / "tests" / "upstream" / "shims"
PLUGIN_DIR = REPO / "tests" / "upstream"

PROVIDER = "apache-airflow-providers-amazon"
VERSION = "9.39.0"
SDIST_NAME = f"apache_airflow_providers_amazon-{VERSION}.tar.gz"
#: Checked after every download; the same hash as the sdist entry of uv.lock.
SDIST_SHA256 = "9ffd82a9cf92ad291d277e00d2b583e34d76e1d486922017815875539886de5a"

#: Official module -> (our module, the classes whose import moves there).
MOVES: dict[str, tuple[str, frozenset[str]]] = {
    "airflow.providers.amazon.aws.operators.rds": (
        "airflow_rds_export.operators",
        frozenset({"RdsStartExportTaskOperator", "RdsCancelExportTaskOperator"}),
    ),
    "airflow.providers.amazon.aws.sensors.rds": (
        "airflow_rds_export.sensors",
        frozenset({"RdsSnapshotExistenceSensor", "RdsExportTaskExistenceSensor"}),
    ),
}

OPERATOR_TESTS = "tests/unit/amazon/aws/operators/test_rds.py"
SENSOR_TESTS = "tests/unit/amazon/aws/sensors/test_rds.py"
#: Modules the test modules import from the sdist itself (used unchanged).
SUPPORT_FILES = ("tests/unit/amazon/aws/utils/test_template_fields.py",)
SYSTEM_DAG = "tests/system/amazon/aws/example_rds_export.py"
DAG_FILE = "example_rds_export.py"

#: What the Amazon provider's conftest files set for every test (``tests/unit/amazon/
#: conftest.py``: ``aws_testing_env_vars``, ``setup_default_aws_connections``), set here
#: for the whole run because those conftest files are not loaded.
AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "airflow-testing",
    "AWS_SECRET_ACCESS_KEY": "airflow-testing",
    "AWS_SESSION_TOKEN": "airflow-testing",
    "AWS_SECURITY_TOKEN": "airflow-testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AIRFLOW_CONN_AWS_DEFAULT": '{"conn_type": "aws"}',
}


class Expectation(NamedTuple):
    """How one official test ends against our classes, and why if it fails."""

    outcome: str
    """``"passed"`` or ``"failed"``."""
    reason: str = ""
    """Why it fails: the documented difference, or the official internal it patches."""
    evidence: str = ""
    """Text that the failure report must contain: it failed for ``reason``, not another."""


PASSES = Expectation("passed")

# Our constructors check literal ARNs when the DAG is parsed; the official tests' export
# ARNs are malformed ("es-east-1" is no Region, the account is empty, an IAM ARN has no
# Region), so the start operator is refused before its test can run.
_MALFORMED_ARN = Expectation(
    "failed",
    "documented difference: parse-time validation refuses the tests' malformed "
    "source_arn 'arn:aws:rds:es-east-1::snapshot:...' (no such Region, empty account)",
    "source_arn='arn:aws:rds:es-east-1::snapshot:my-db-instance-snap' is invalid",
)
# moto completes an export the moment it starts; AWS refuses to cancel a finished export
# (InvalidExportTaskStateFault), and our cancel decides that case: skip, by default.
_CANCEL_FINISHED = Expectation(
    "failed",
    "documented difference: moto completes exports at once, and cancelling a finished "
    "export skips (on_invalid_state='skip') where the official operator asks AWS anyway",
    "AirflowSkipException",
)

# The official test_error_statuses mocks the official hook's method; ours is not called.
_PATCHES_OFFICIAL_HOOK = Expectation(
    "failed",
    "patches an official internal: it mocks RdsHook.get_export_task_state to say 'failed'; "
    "our sensor asks its own hook, finds no export yet and keeps waiting (poke is False)",
    "DID NOT RAISE",
)

#: Every official test of the four classes -> how it ends against our classes, by class.
_BY_CLASS: dict[str, dict[str, Expectation]] = {
    f"{OPERATOR_TESTS}::TestRdsStartExportTaskOperator": {
        "test_start_export_task": _MALFORMED_ARN,
        "test_start_export_task_no_wait": _MALFORMED_ARN,
        "test_template_fields": _MALFORMED_ARN,
    },
    f"{OPERATOR_TESTS}::TestRdsCancelExportTaskOperator": {
        "test_cancel_export_task": _CANCEL_FINISHED,
        "test_cancel_export_task_no_wait": _CANCEL_FINISHED,
        "test_template_fields": PASSES,
    },
    f"{SENSOR_TESTS}::TestRdsSnapshotExistenceSensor": {
        "test_template_fields": PASSES,
        "test_db_instance_snapshot_poke_true": PASSES,
        "test_db_instance_snapshot_poke_false": PASSES,
        "test_db_instance_cluster_poke_true": PASSES,
        "test_db_instance_cluster_poke_false": PASSES,
    },
    f"{SENSOR_TESTS}::TestRdsExportTaskExistenceSensor": {
        "test_template_fields": PASSES,
        "test_export_task_poke_true": PASSES,
        "test_export_task_poke_false": PASSES,
        "test_error_statuses": _PATCHES_OFFICIAL_HOOK,
    },
}
#: The same table by pytest node id (``<file>::<class>::<test>``, paths as in the sdist).
EXPECTED: dict[str, Expectation] = {
    f"{test_class}::{test}": expectation
    for test_class, tests in _BY_CLASS.items()
    for test, expectation in tests.items()
}
#: The four official test classes this script runs (nothing else in those modules runs).
TEST_CLASSES = tuple(_BY_CLASS)


class UpstreamTestsError(RuntimeError):
    """The official tests could not be fetched, prepared or run."""


# --- the sdist ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where the sdist and its extracted copy are kept between runs."""
    default = Path(tempfile.gettempdir()) / "airflow-rds-export-upstream"
    path = Path(os.environ.get("AIRFLOW_RDS_EXPORT_UPSTREAM_CACHE") or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One fetch / extraction at a time (parallel test workers share the cache)."""
    with open(folder / ".lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - non-POSIX
            pass
        yield


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path) -> Path:
    actual = sha256_of(path)
    if actual != SDIST_SHA256:
        raise UpstreamTestsError(
            f"{path}: SHA-256 {actual} is not the pinned {SDIST_SHA256}; not using it"
        )
    return path


def _python_with_pip() -> str:
    """An interpreter that has pip (uv's venvs have none; the system Python usually does)."""
    for candidate in (sys.executable, shutil.which("python3"), shutil.which("python")):
        if not candidate:
            continue
        probe = [candidate, "-m", "pip", "--version"]
        if subprocess.run(probe, capture_output=True, check=False).returncode == 0:
            return candidate
    raise UpstreamTestsError(
        f"no Python with pip found to download {PROVIDER}=={VERSION}; download "
        f"{SDIST_NAME} yourself and set AIRFLOW_RDS_EXPORT_UPSTREAM_SDIST to its path"
    )


def fetch_sdist(cache: Path) -> Path:
    """The pinned sdist, downloaded with pip once, its SHA-256 checked every time."""
    local = os.environ.get("AIRFLOW_RDS_EXPORT_UPSTREAM_SDIST")
    if local:
        return _verified(Path(local))
    target = cache / SDIST_NAME
    if target.exists():
        return _verified(target)
    download = Path(tempfile.mkdtemp(prefix="download-", dir=cache))
    try:
        command = [
            _python_with_pip(), "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
            f"{PROVIDER}=={VERSION}", "-d", str(download),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        fetched = download / SDIST_NAME
        if done.returncode != 0 or not fetched.exists():
            raise UpstreamTestsError(
                f"{' '.join(command)} failed (exit {done.returncode}):\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            )
        _verified(fetched)
        os.replace(fetched, target)
    finally:
        shutil.rmtree(download, ignore_errors=True)
    return target


def extract_sdist(sdist: Path, cache: Path) -> Path:
    """The sdist's source tree (extracted once per hash, atomically)."""
    root = cache / f"src-{SDIST_SHA256[:12]}" / SDIST_NAME.removesuffix(".tar.gz")
    if root.is_dir():
        return root
    shutil.rmtree(root.parent, ignore_errors=True)  # what an interrupted run left
    scratch = Path(tempfile.mkdtemp(prefix="extract-", dir=cache))
    try:
        with tarfile.open(sdist) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(scratch, filter="data")
            else:  # pragma: no cover - Python < 3.11.4
                archive.extractall(scratch)  # the archive's hash was checked
        os.replace(scratch, root.parent)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def source_tree() -> Path:
    """Fetch, check and extract the pinned sdist; return its root folder."""
    cache = cache_dir()
    with _locked(cache):
        return extract_sdist(fetch_sdist(cache), cache)


# --- switching the imports ------------------------------------------------------------------


def switch_imports(source: str, filename: str = "<official>") -> str:
    """``source`` with the four classes imported from ``airflow_rds_export``.

    Only ``from <official module> import ...`` statements change: the four names leave
    them for an import from our module, every other name stays. Line numbers are kept
    (a shorter statement is padded with blank lines), so tracebacks point at the lines
    of the sdist's file. Raises if a class is imported some other way, or not at all.
    """
    tree = ast.parse(source, filename)
    lines = source.splitlines(keepends=True)
    moved: set[str] = set()
    edits: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MOVES:
                    raise UpstreamTestsError(f"{filename}:{node.lineno}: 'import {alias.name}'")
        if not isinstance(node, ast.ImportFrom) or node.module not in MOVES:
            continue
        ours, names = MOVES[node.module]
        keep = [alias for alias in node.names if alias.name not in names]
        switch = [alias for alias in node.names if alias.name in names]
        if not switch:
            continue
        moved.update(alias.name for alias in switch)
        assert node.end_lineno is not None
        span = node.end_lineno - node.lineno + 1
        statements = _import_lines(node.module, keep, span - 1) + _import_lines(ours, switch, 0)
        if len(statements) > span:  # a one-line import that keeps names: both on its line
            statements = ["; ".join(_import_lines(node.module, keep, 0) + statements[-1:])]
        padding = [""] * (span - len(statements))  # keeps the lines below where they were
        text = "".join(" " * node.col_offset + line + "\n" for line in statements + padding)
        edits.append((node.lineno - 1, node.end_lineno, text))
    for start, end, text in sorted(edits, reverse=True):
        lines[start:end] = [text]
    rewritten = "".join(lines)
    _check_only_imports_switched(source, rewritten, filename)
    for attribute in ("." + name for _, names in MOVES.values() for name in names):
        for official in MOVES:
            if official + attribute in rewritten:  # e.g. a patch() target by its path
                raise UpstreamTestsError(f"{filename}: refers to {official}{attribute}")
    if not moved:
        raise UpstreamTestsError(f"{filename}: imports none of the four classes")
    return rewritten


def _import_lines(module: str, names: Sequence[ast.alias], room: int) -> list[str]:
    """``from module import names``: one name a line if ``room`` lines allow, else one line."""
    if not names:
        return []
    if len(names) + 2 > room:
        return [ast.unparse(ast.ImportFrom(module, list(names), 0))]
    return [f"from {module} import (", *(f"    {ast.unparse(n)}," for n in names), ")"]


def _imports_and_rest(source: str) -> tuple[set[tuple[str, str | None]], str]:
    """The names imported from official or our modules, and the module without them."""
    tree = ast.parse(source)
    involved = set(MOVES) | {module for module, _ in MOVES.values()}
    names: set[tuple[str, str | None]] = set()
    for parent in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            block = getattr(parent, field, None)
            if not isinstance(block, list):
                continue
            kept = []
            for node in block:
                if isinstance(node, ast.ImportFrom) and node.module in involved:
                    names.update((alias.name, alias.asname) for alias in node.names)
                else:
                    kept.append(node)
            setattr(parent, field, kept)
    return names, ast.dump(tree)


def _check_only_imports_switched(original: str, rewritten: str, filename: str) -> None:
    """The syntax trees agree once those imports are set aside; the same names imported."""
    before_names, before = _imports_and_rest(original)
    after_names, after = _imports_and_rest(rewritten)
    if before_names != after_names or before != after:
        raise UpstreamTestsError(f"{filename}: the rewrite changed more than the imports")


def import_diff(original: str, rewritten: str, filename: str) -> str:
    return "".join(
        difflib.unified_diff(
            original.splitlines(keepends=True),
            rewritten.splitlines(keepends=True),
            f"sdist/{filename}",
            f"run/{filename}",
            n=0,
        )
    )


def system_dag_source(root: Path | None = None) -> str:
    """The official system-test DAG, its four classes imported from ``airflow_rds_export``."""
    root = root or source_tree()
    return switch_imports((root / SYSTEM_DAG).read_text(), SYSTEM_DAG)


# --- running them ---------------------------------------------------------------------------


def prepare_run(root: Path, work: Path, *, official: bool) -> list[str]:
    """Copy the test modules (imports switched unless ``official``) and what they import
    into ``work``, the ``__init__.py`` files of their packages included, no conftest."""
    diffs = []
    for relative in (OPERATOR_TESTS, SENSOR_TESTS, *SUPPORT_FILES):
        source = (root / relative).read_text()
        if relative in (OPERATOR_TESTS, SENSOR_TESTS) and not official:
            rewritten = switch_imports(source, relative)
            diffs.append(import_diff(source, rewritten, relative))
            source = rewritten
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source)
        package = Path(relative).parent
        while package.parts[1:]:  # tests/unit/... up to, not including, tests/
            init = root / package / "__init__.py"
            if init.exists():
                shutil.copyfile(init, work / package / "__init__.py")
            package = package.parent
    (work / "pytest.ini").write_text("[pytest]\n")
    return diffs


def run_environment(work: Path, outcomes: Path) -> dict[str, str]:
    """The environment of the pytest run: ours minus any Airflow / AWS setting, plus the
    settings the provider's conftest files would make, a throw-away Airflow home, and
    the shims and the outcome recorder on the path."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "AWS", "BOTO")) and key != "PYTHONPATH"
    }
    configs = work / "aws-config"
    configs.mkdir(exist_ok=True)
    for name in ("credentials", "config", "boto.cfg"):
        (configs / name).touch()
    env.update(AWS_TEST_ENV)
    env.update(
        {
            "AWS_SHARED_CREDENTIALS_FILE": str(configs / "credentials"),
            "AWS_CONFIG_FILE": str(configs / "config"),
            "BOTO_CONFIG": str(configs / "boto.cfg"),
            "AIRFLOW_HOME": str(work / "airflow-home"),
            "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": os.pathsep.join((str(SHIMS), str(PLUGIN_DIR))),
            "PYTHONDONTWRITEBYTECODE": "1",
            "UPSTREAM_TESTS_OUTCOMES": str(outcomes),
        }
    )
    return env


def run_pytest(work: Path, extra_args: Sequence[str] = ()) -> tuple[int, dict[str, Any]]:
    """Run the four test classes in ``work``; return pytest's exit code and the outcomes."""
    outcomes = work / "outcomes.json"
    command = [
        sys.executable, "-m", "pytest", *TEST_CLASSES,
        "-c", str(work / "pytest.ini"), "--rootdir", str(work), "--confcutdir", str(work),
        "-p", "pytest_outcomes", "-p", "no:cacheprovider", "-p", "no:airflow_rds_export",
        "-rfE", "--tb=short", "--no-header", *extra_args,
    ]  # fmt: skip
    code = subprocess.run(
        command, cwd=work, env=run_environment(work, outcomes), check=False
    ).returncode
    if not outcomes.exists():
        raise UpstreamTestsError(f"pytest wrote no outcomes (exit {code}): see its output above")
    return code, json.loads(outcomes.read_text())


class Row(NamedTuple):
    test_id: str
    expected: str
    actual: str
    as_expected: bool
    reason: str
    report: str


def compare(outcomes: Mapping[str, Mapping[str, str]], *, official: bool = False) -> list[Row]:
    """One row per test that ran or is in :data:`EXPECTED`: as expected or not, and why."""
    rows = []
    for test_id in sorted(set(EXPECTED) | set(outcomes)):
        ran = outcomes.get(test_id)
        actual = ran["outcome"] if ran else "not run"
        report = ran["text"] if ran else ""
        expectation = PASSES if official else EXPECTED.get(test_id)
        if expectation is None:
            rows.append(Row(test_id, "(not in EXPECTED)", actual, False, "", report))
            continue
        as_expected = actual == expectation.outcome and expectation.evidence in report
        reason = expectation.reason
        if actual == expectation.outcome == "failed" and not as_expected:
            reason = f"failed, but its report lacks {expectation.evidence!r}; {reason}"
        rows.append(Row(test_id, expectation.outcome, actual, as_expected, reason, report))
    return rows


def print_table(rows: Sequence[Row]) -> None:
    print(f"\n{'official test':<78} {'expected':<8} {'actual':<8} verdict")
    for row in rows:
        short = row.test_id.replace("tests/unit/amazon/aws/", "")
        verdict = "ok" if row.as_expected else "MISMATCH"
        print(f"{short:<78} {row.expected:<8} {row.actual:<8} {verdict}")
        if row.reason:
            print(f"    why: {row.reason}")
    for row in rows:
        if not row.as_expected and row.report:
            print(f"\n--- {row.test_id} ({row.actual}) ---\n{row.report[-3000:]}")
    mismatches = sum(not row.as_expected for row in rows)
    passed = sum(row.actual == "passed" for row in rows)
    print(
        f"\n{len(rows)} official tests: {passed} passed, {len(rows) - passed} did not; "
        f"{len(rows) - mismatches} as expected, {mismatches} not"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", action="store_true", help="run against the official classes")
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    parser.add_argument("--show-diff", action="store_true", help="print the import switch")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    try:
        root = source_tree()
        work = Path(tempfile.mkdtemp(prefix="run-", dir=cache_dir()))
        try:
            diffs = prepare_run(root, work, official=args.official)
            label = "official" if args.official else "airflow_rds_export"
            print(f"{PROVIDER}=={VERSION} sdist sha256 {SDIST_SHA256} (verified)")
            print(f"running {len(TEST_CLASSES)} official test classes against {label} in {work}")
            if args.show_diff:
                print("".join(diffs))
            sys.stdout.flush()
            _code, outcomes = run_pytest(work, args.pytest_args)
        finally:
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
    except UpstreamTestsError as exc:
        print(f"upstream_tests: {exc}", file=sys.stderr)
        return 2
    rows = compare(outcomes, official=args.official)
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([row._asdict() for row in rows], indent=2))
    return 0 if all(row.as_expected for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
