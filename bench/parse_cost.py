"""Benchmark 1: parse cost, ours vs the official Amazon provider.

a) Marginal import time of the operator and sensor modules once ``airflow.sdk`` is already
   imported: each measurement is a fresh interpreter (``python -c``) that imports
   ``airflow.sdk`` untimed, then times importing the two modules. Ours and official are
   interleaved, ``--runs`` each; the median is reported.
b) Parse time of a DAG folder of 50 export DAGs (snapshot sensor >> start export >> export
   sensor) written with each provider, and of the same 50 DAGs built from EmptyOperator
   (the baseline any DAG pays; "net" = folder minus baseline): a fresh interpreter
   imports ``airflow.sdk`` untimed, then times executing all 50 files as the DAG
   processor does (a module per file). Interleaved, ``--folder-runs`` each; median reported.

Both sides are measured from bytecode: a warm-up import of each side writes the ``.pyc``
caches first (``PYTHONDONTWRITEBYTECODE`` is dropped from the children's environment), and
every timed child reports how many of the modules it imported had no cache (0 expected).
Every child gets its own throw-away ``AIRFLOW_HOME``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import textwrap
from pathlib import Path

from _common import PYTHON, REPO, machine, median, save

MODULES = {
    "ours": ("airflow_rds_export.operators", "airflow_rds_export.sensors"),
    "official": (
        "airflow.providers.amazon.aws.operators.rds",
        "airflow.providers.amazon.aws.sensors.rds",
    ),
}

IMPORT_CHILD = textwrap.dedent(
    """
    import importlib, os, sys, time
    import airflow.sdk  # the baseline every DAG file pays anyway
    before = set(sys.modules)
    t0 = time.perf_counter()
    for name in sys.argv[1:]:
        importlib.import_module(name)
    elapsed = time.perf_counter() - t0
    # Modules this import loaded from source because no bytecode cache was there.
    new = [sys.modules[m] for m in set(sys.modules) - before]
    cached = [getattr(getattr(m, "__spec__", None), "cached", None) for m in new]
    from_source = sum(1 for c in cached if c and not os.path.exists(c))
    print(elapsed, int("boto3" in sys.modules), int("airflow.triggers" in sys.modules), from_source)
    """
)

FOLDER_CHILD = textwrap.dedent(
    """
    import importlib.util, pathlib, sys, time
    import airflow.sdk
    files = sorted(pathlib.Path(sys.argv[1]).glob("*.py"))
    t0 = time.perf_counter()
    dags = 0
    for path in files:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        dags += sum(1 for v in vars(module).values() if type(v).__name__ == "DAG")
    elapsed = time.perf_counter() - t0
    print(elapsed, dags)
    """
)

OURS_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow_rds_export.operators import RdsStartExportTaskOperator
from airflow_rds_export.sensors import RdsExportTaskStateSensor, RdsSnapshotReadySensor

with DAG(
    dag_id="export_{i}", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False
) as dag:
    snap = RdsSnapshotReadySensor(
        task_id="wait_for_snapshot", db_snapshot_identifier="db{i}-snap", db_type="instance"
    )
    start = RdsStartExportTaskOperator(
        task_id="start_export",
        export_task_identifier="db{i}-{{{{ ds_nodash }}}}",
        source_arn="arn:aws:rds:us-east-1:123456789012:snapshot:db{i}-snap",
        s3_bucket_name="rds-exports",
        iam_role_arn="arn:aws:iam::123456789012:role/rds-s3-export",
        kms_key_id="alias/rds-exports",
        wait_for_completion=False,
    )
    wait = RdsExportTaskStateSensor(
        task_id="wait_for_export", export_task_identifier="db{i}-{{{{ ds_nodash }}}}"
    )
    snap >> start >> wait
"""

OFFICIAL_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.amazon.aws.operators.rds import RdsStartExportTaskOperator
from airflow.providers.amazon.aws.sensors.rds import (
    RdsExportTaskExistenceSensor,
    RdsSnapshotExistenceSensor,
)

with DAG(
    dag_id="export_{i}", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False
) as dag:
    snap = RdsSnapshotExistenceSensor(
        task_id="wait_for_snapshot", db_snapshot_identifier="db{i}-snap", db_type="instance"
    )
    start = RdsStartExportTaskOperator(
        task_id="start_export",
        export_task_identifier="db{i}-{{{{ ds_nodash }}}}",
        source_arn="arn:aws:rds:us-east-1:123456789012:snapshot:db{i}-snap",
        s3_bucket_name="rds-exports",
        iam_role_arn="arn:aws:iam::123456789012:role/rds-s3-export",
        kms_key_id="alias/rds-exports",
        wait_for_completion=False,
    )
    wait = RdsExportTaskExistenceSensor(
        task_id="wait_for_export",
        export_task_identifier="db{i}-{{{{ ds_nodash }}}}",
        target_statuses=["complete"],
    )
    snap >> start >> wait
"""


EMPTY_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(
    dag_id="export_{i}", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False
) as dag:
    EmptyOperator(task_id="wait_for_snapshot") >> EmptyOperator(
        task_id="start_export"
    ) >> EmptyOperator(task_id="wait_for_export")
"""


def _env(home: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AIRFLOW") and k != "PYTHONDONTWRITEBYTECODE"
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONPATH=str(REPO),
    )
    return env


def _child(code: str, args: list[str], env: dict[str, str]) -> list[str]:
    out = subprocess.run(
        [PYTHON, "-c", code, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"child failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1].split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--folder-runs", type=int, default=5)
    parser.add_argument("--dags", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        root = Path(tmp)
        env = _env(root / "home")
        (root / "home").mkdir()
        # Warm-up: creates airflow.cfg once, writes both sides' bytecode, fills OS caches.
        for side in ("ours", "official"):
            _child(IMPORT_CHILD, list(MODULES[side]), env)

        imports: dict[str, list[float]] = {"ours": [], "official": []}
        boto3_loaded: dict[str, bool] = {}
        triggers_loaded: dict[str, bool] = {}
        from_source: dict[str, int] = {"ours": 0, "official": 0}
        for _ in range(args.runs):
            for side in ("ours", "official"):
                elapsed, boto, triggers, uncached = _child(IMPORT_CHILD, list(MODULES[side]), env)
                imports[side].append(float(elapsed))
                boto3_loaded[side] = boto == "1"
                triggers_loaded[side] = triggers == "1"
                from_source[side] += int(uncached)

        sides = {"ours": OURS_DAG, "official": OFFICIAL_DAG, "baseline": EMPTY_DAG}
        folders = {side: root / f"dags_{side}" for side in sides}
        for side, template in sides.items():
            folders[side].mkdir()
            for i in range(args.dags):
                (folders[side] / f"export_{i}.py").write_text(template.format(i=i))
        folder_times: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.folder_runs):
            for side in sides:
                elapsed, dags = _child(FOLDER_CHILD, [str(folders[side])], env)
                if int(dags) != args.dags:
                    raise RuntimeError(f"{side}: {dags} DAGs parsed, expected {args.dags}")
                folder_times[side].append(float(elapsed))

    result = {
        "runs": args.runs,
        "folder_runs": args.folder_runs,
        "dags": args.dags,
        "import_seconds": imports,
        "import_median": {k: median(v) for k, v in imports.items()},
        "boto3_imported": boto3_loaded,
        "airflow_triggers_imported": triggers_loaded,
        "modules_imported_without_bytecode": from_source,
        "folder_seconds": folder_times,
        "folder_median": {k: median(v) for k, v in folder_times.items()},
        "machine": machine(),
    }
    result["import_ratio"] = result["import_median"]["ours"] / result["import_median"]["official"]
    fmed = result["folder_median"]
    result["folder_ratio"] = fmed["ours"] / fmed["official"]
    # What the provider adds to a folder of the same DAGs built with EmptyOperator.
    result["folder_net"] = {side: fmed[side] - fmed["baseline"] for side in ("ours", "official")}
    result["folder_net_ratio"] = result["folder_net"]["ours"] / result["folder_net"]["official"]
    save("parse_cost", result)
    im, fm = result["import_median"], result["folder_median"]
    print(
        f"marginal import (median of {args.runs}): ours {im['ours'] * 1000:.1f} ms, "
        f"official {im['official'] * 1000:.1f} ms, ratio {result['import_ratio']:.3f} "
        f"(boto3 imported: {boto3_loaded}, airflow.triggers imported: {triggers_loaded}, "
        f"modules without bytecode: {from_source})"
    )
    print(
        f"{args.dags}-DAG folder (median of {args.folder_runs}): ours {fm['ours']:.3f} s, "
        f"official {fm['official']:.3f} s, ratio {result['folder_ratio']:.3f}"
    )


if __name__ == "__main__":
    main()
