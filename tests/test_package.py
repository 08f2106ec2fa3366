"""The package as Airflow and DAG authors meet it: cheap imports, provider metadata, and
the official operators' parameters."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_rds_export.operators import RdsCancelExportTaskOperator, RdsStartExportTaskOperator

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_DAGS = sorted((REPO / "example_dags").glob("*.py"))


def fresh_python(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )


#: Modules only a running task (or the triggerer) may load: the AWS SDK, triggers, and
#: this package's asset, lineage and verification code with the OpenLineage client.
#: (Airflow's provider discovery itself imports ``airflow.providers.openlineage`` and
#: its ``get_provider_info``, and nothing more of it.)
RUN_TIME_ONLY = (
    "boto3",
    "botocore",
    "airflow.triggers",
    "airflow.providers.openlineage.extractors",
    "openlineage.client",
    "airflow_rds_export.assets",
    "airflow_rds_export.links",
    "airflow_rds_export.lineage",
    "airflow_rds_export.verification",
    "airflow_rds_export.hooks",
)
LOADED = f"[m for m in {RUN_TIME_ONLY!r} if m in sys.modules]"
#: The same, where Airflow's DagBag parses a file (it imports airflow.triggers itself).
LOADED_BY_DAG = LOADED.replace("'airflow.triggers', ", "")


def test_importing_the_package_and_its_components_loads_no_aws_sdk(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import airflow_rds_export\n"
        f"print('package', {LOADED})\n"
        "import airflow_rds_export.operators, airflow_rds_export.sensors\n"
        f"print('components', {LOADED})\n"
    )
    result = fresh_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["package []", "components []"]


def test_importing_the_event_driven_parts_loads_no_aws_sdk(tmp_path: Path) -> None:
    """What an event-driven DAG file imports: the event trigger (built at parse time for
    its AssetWatcher), the announcements helper and the plugin's macros."""
    code = (
        "import sys\n"
        "import airflow_rds_export.event_triggers, airflow_rds_export.announcements\n"
        "import airflow_rds_export.plugin, airflow_rds_export.rds_events\n"
        "from airflow_rds_export.event_triggers import RdsEventTrigger\n"
        "RdsEventTrigger(sqs_queue='https://sqs.eu-west-1.amazonaws.com/123456789012/q')\n"
        "print('AWS-SDK', 'boto3' in sys.modules, 'botocore' in sys.modules)\n"
        "print('SQS-TRIGGER', 'airflow.providers.amazon.aws.triggers.sqs' in sys.modules)\n"
    )
    result = fresh_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["AWS-SDK", "False", "False", "SQS-TRIGGER", "False"]


@pytest.mark.parametrize("dag_file", EXAMPLE_DAGS, ids=[p.stem for p in EXAMPLE_DAGS])
def test_example_dag_parses_without_aws_sdk_or_cycles(dag_file: Path, tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(dag_file)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "for dag in bag.dags.values():\n"
        "    dag.check_cycle()\n"
        "    print('DAG', dag.dag_id, len(dag.tasks))\n"
        "print('AWS-SDK', 'boto3' in sys.modules, 'botocore' in sys.modules)\n"
        f"print('RUN-TIME-ONLY', *{LOADED_BY_DAG})\n"
    )
    result = fresh_python(code, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["AWS-SDK", "False", "False"] in lines
    # Airflow's .expand() copies the operator class's links into the mapped task, so a DAG
    # that maps one of our operators loads the links module; no other DAG does.
    maps = ".expand" in dag_file.read_text()
    assert ["RUN-TIME-ONLY", *(["airflow_rds_export.links"] if maps else [])] in lines
    [(_, dag_id, task_count)] = [line for line in lines if line[:1] == ["DAG"]]
    assert dag_id == dag_file.stem
    assert int(task_count) >= (1 if dag_id == "nightly_export_consumer" else 4)


def test_airflow_lists_the_provider(tmp_path: Path) -> None:
    airflow = Path(sys.executable).with_name("airflow")
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [str(airflow), "providers", "list", "-o", "plain"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "airflow-rds-export" in result.stdout


def test_provider_info_names_importable_modules() -> None:
    import importlib

    from airflow_rds_export.provider_info import get_provider_info

    info = get_provider_info()
    assert info["package-name"] == "airflow-rds-export"
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module in entry["python-modules"]:
                importlib.import_module(module)


@pytest.mark.parametrize(
    ("ours", "official_path"),
    [
        (RdsStartExportTaskOperator, "RdsStartExportTaskOperator"),
        (RdsCancelExportTaskOperator, "RdsCancelExportTaskOperator"),
    ],
)
def test_every_official_parameter_is_accepted_with_the_same_default(
    ours: type, official_path: str
) -> None:
    """Switching from the Amazon provider is changing the import."""
    from airflow.providers.amazon.aws.operators import rds as official_rds
    from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator

    official = getattr(official_rds, official_path)
    official_params = {
        **inspect.signature(AwsBaseOperator.__init__).parameters,
        **inspect.signature(official.__init__).parameters,
    }
    our_params = inspect.signature(ours.__init__).parameters
    checked = 0
    for name, parameter in official_params.items():
        if name in ("self", "args", "kwargs", "aws_hook_class"):
            continue
        assert name in our_params, f"{ours.__name__} lacks {name}"
        if name == "region":  # the Amazon base's alias of region_name, default a sentinel
            continue
        assert our_params[name].default == parameter.default, name
        checked += 1
    assert checked >= 6
    for field in official.template_fields:
        assert field in ours.template_fields, field


def test_mapped_operators_keep_empty_inlets_and_outlets() -> None:
    """``.partial()`` must see BaseOperator's list defaults, or mapped tasks cannot run."""
    import pendulum
    from airflow.sdk import DAG

    with DAG("mapped", schedule=None, start_date=pendulum.datetime(2024, 1, 1)) as dag:
        RdsStartExportTaskOperator.partial(
            task_id="start",
            s3_bucket_name="rds-exports",
            iam_role_arn="arn:aws:iam::123456789012:role/r",
            kms_key_id="alias/k",
        ).expand(export_task_identifier=["a", "b"], source_arn=["x"])
        RdsCancelExportTaskOperator.partial(task_id="cancel").expand(
            export_task_identifier=["a", "b"]
        )
    for task_id in ("start", "cancel"):
        partial_kwargs = dag.task_dict[task_id].partial_kwargs
        assert partial_kwargs["inlets"] == [] and partial_kwargs["outlets"] == []
