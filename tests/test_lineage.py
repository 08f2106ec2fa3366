"""Table-driven tests of :mod:`airflow_rds_export.lineage`, then the OpenLineage provider's
side: the ``OperatorLineage`` it is handed, what its extractor makes of it, and the COMPLETE
event its adapter writes through the file transport configured as a deployment would.

Each row is an export as its driver would describe it (the export task, the source instance
or cluster, the snapshot, the tables read) and the datasets OpenLineage must see.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from airflow_rds_export.decisions import TableProblem, TablesVerdict
from airflow_rds_export.export_metadata import TableStatus, merge_tables_info
from airflow_rds_export.lineage import (
    BYTES_PER_GB,
    SNAPSHOT_FACET,
    ExportedDataset,
    SourceDataset,
    export_lineage,
    lineage_datasets,
)

REGION_ACCOUNT = "arn:aws:rds:us-east-1:123456789012"
SNAPSHOT_ARN = f"{REGION_ACCOUNT}:snapshot:rds:orders-2026-11-21-03-00"
CLUSTER_SNAPSHOT_ARN = f"{REGION_ACCOUNT}:cluster-snapshot:shop-nightly-20261121"
SNAPSHOT_TIME = "2026-11-21T03:00:00+00:00"
PG_HOST = "orders.c9akciq32.us-east-1.rds.amazonaws.com"
PG = f"postgres://{PG_HOST}:5432"
MYSQL_HOST = "shop.cluster-c9akciq32.us-east-1.rds.amazonaws.com"
MYSQL = f"mysql://{MYSQL_HOST}:3306"
S3 = "s3://exports-bucket"
FOLDER = "nightly/orders-20261121"


def export(**changes: Any) -> dict[str, Any]:
    """An export task description as DescribeExportTasks (and the operators' XCom) give it."""
    described = {
        "ExportTaskIdentifier": "orders-20261121",
        "SourceArn": SNAPSHOT_ARN,
        "SnapshotTime": SNAPSHOT_TIME,
        "S3Bucket": "exports-bucket",
        "S3Prefix": "nightly/",
        "Status": "COMPLETE",
        "TotalExtractedDataInGB": 20,
        "SourceType": "SNAPSHOT",
    }
    described.update(changes)
    return {key: value for key, value in described.items() if value is not None}


# DescribeDBInstances DBInstances[0] (trimmed), upper case in the endpoint as a user may see it.
PG_INSTANCE = {
    "DBInstanceIdentifier": "orders",
    "DBInstanceArn": f"{REGION_ACCOUNT}:db:orders",
    "Engine": "postgres",
    "DBName": "orders",
    "Endpoint": {"Address": PG_HOST.upper(), "Port": 5432, "HostedZoneId": "Z2R2ITUGPM61AM"},
}
# DescribeDBClusters DBClusters[0] (trimmed).
MYSQL_CLUSTER = {
    "DBClusterIdentifier": "shop",
    "DBClusterArn": f"{REGION_ACCOUNT}:cluster:shop",
    "Engine": "aurora-mysql",
    "DatabaseName": "shop",
    "Endpoint": MYSQL_HOST,
    "ReaderEndpoint": "shop.cluster-ro-c9akciq32.us-east-1.rds.amazonaws.com",
    "Port": 3306,
}
# DescribeDBSnapshots DBSnapshots[0] (trimmed), with a datetime as boto3 returns it.
PG_SNAPSHOT = {
    "DBSnapshotIdentifier": "rds:orders-2026-11-21-03-00",
    "DBSnapshotArn": SNAPSHOT_ARN,
    "DBInstanceIdentifier": "orders",
    "Engine": "postgres",
    "Port": 5432,
    "SnapshotCreateTime": datetime(2026, 11, 21, 3, 0, tzinfo=timezone.utc),
}
MYSQL_EXPORT = {"ExportTaskIdentifier": "shop-20261121", "SourceArn": CLUSTER_SNAPSHOT_ARN}
MYSQL_FOLDER = "nightly/shop-20261121"


def tables_info(*entries: tuple[str, str, float]) -> Any:
    """An export_tables_info file, parsed as the verification reads it."""
    body = {
        "perTableStatus": [
            {"target": target, "status": status, "sizeGB": size} for target, status, size in entries
        ]
    }
    return merge_tables_info({"s3://exports-bucket/x_from_1_to_9.json": json.dumps(body)})


PG_TABLES = tables_info(
    ("orders.public.orders", "COMPLETE", 10.0),
    ("orders.audit.events", "COMPLETE", 3.0),
    ("orders.public.broken", "FAILED", 0.0),
)
MYSQL_TABLES = [
    TableStatus("shop.shop.orders", "COMPLETE", 2.0, None),
    TableStatus("shop.customers", "complete", 0.5, None),  # the db.table form: same folder
    TableStatus("shop.shop.skipped", "SKIPPED", None, None),
]


def source_input(namespace: str, name: str, **changes: Any) -> SourceDataset:
    fields: dict[str, Any] = {
        "snapshot_arn": SNAPSHOT_ARN,
        "snapshot_time": SNAPSHOT_TIME,
        "source_arn": PG_INSTANCE["DBInstanceArn"],
        "engine": "postgres",
    }
    fields.update(changes)
    return SourceDataset(namespace, name, **fields)


def gib(size_gb: float) -> int:
    return round(size_gb * BYTES_PER_GB)


class Case(NamedTuple):
    export: dict[str, Any]
    source: dict[str, Any] | None
    snapshot: dict[str, Any] | None
    tables: Any
    naming: str
    inputs: list[SourceDataset]
    outputs: list[ExportedDataset]


MYSQL_INPUT = {
    "snapshot_arn": CLUSTER_SNAPSHOT_ARN,
    "source_arn": MYSQL_CLUSTER["DBClusterArn"],
    "engine": "aurora-mysql",
}

CASES: dict[str, Case] = {
    "postgres instance, whole database (DBName), size from TotalExtractedDataInGB": Case(
        export(),
        PG_INSTANCE,
        None,
        None,
        "postgres",
        [source_input(PG, "orders")],
        [ExportedDataset(S3, FOLDER, gib(20))],
    ),
    "postgres instance, per table from export_tables_info: COMPLETE tables only": Case(
        export(),
        PG_INSTANCE,
        PG_SNAPSHOT,
        PG_TABLES,
        "postgres",
        [source_input(PG, "orders.public.orders"), source_input(PG, "orders.audit.events")],
        [
            ExportedDataset(S3, f"{FOLDER}/orders/public.orders", gib(10)),
            ExportedDataset(S3, f"{FOLDER}/orders/audit.events", gib(3)),
        ],
    ),
    "postgres instance, ExportOnly entries named as written": Case(
        export(ExportOnly=["orders.public", "orders.audit.events"]),
        PG_INSTANCE,
        None,
        None,
        "postgres",
        [source_input(PG, "orders.public"), source_input(PG, "orders.audit.events")],
        [ExportedDataset(S3, FOLDER, gib(20))],
    ),
    "Tables XCom shape: whole export, its verified TotalGB wins": Case(
        export(
            Tables=TablesVerdict(
                complete=3,
                failed=(TableProblem("orders.public.broken", "status 'FAILED'"),),
                skipped=(),
                missing=(),
                total_gb=13.5,
                tables_info_read=True,
                notes=(),
            ).to_jsonable()
        ),
        PG_INSTANCE,
        None,
        None,
        "postgres",
        [source_input(PG, "orders")],
        [ExportedDataset(S3, FOLDER, gib(13.5))],
    ),
    "aurora mysql cluster, whole database (DatabaseName)": Case(
        export(**MYSQL_EXPORT, SnapshotTime=None),
        MYSQL_CLUSTER,
        None,
        None,
        "mysql",
        [source_input(MYSQL, "shop", snapshot_time=None, **MYSQL_INPUT)],
        [ExportedDataset(S3, MYSQL_FOLDER, gib(20))],
    ),
    "aurora mysql cluster, per table: db.table names, {db}/{db}.{table} folders": Case(
        export(**MYSQL_EXPORT),
        MYSQL_CLUSTER,
        None,
        MYSQL_TABLES,
        "mysql",
        [
            source_input(MYSQL, "shop.orders", **MYSQL_INPUT),
            source_input(MYSQL, "shop.customers", **MYSQL_INPUT),
        ],
        [
            ExportedDataset(S3, f"{MYSQL_FOLDER}/shop/shop.orders", gib(2)),
            ExportedDataset(S3, f"{MYSQL_FOLDER}/shop/shop.customers", gib(0.5)),
        ],
    ),
    "no description: the snapshot by ARN; no prefix": Case(
        export(S3Prefix=None),
        None,
        None,
        None,
        "arn",
        [
            source_input(
                REGION_ACCOUNT, "snapshot:rds:orders-2026-11-21-03-00", source_arn=None, engine=None
            )
        ],
        [ExportedDataset(S3, "orders-20261121", gib(20))],
    ),
    "snapshot described only: the instance by ARN, per table": Case(
        export(SnapshotTime=None),
        None,
        PG_SNAPSHOT,
        PG_TABLES,
        "arn",
        [
            source_input(REGION_ACCOUNT, "db:orders/orders.public.orders", source_arn=None),
            source_input(REGION_ACCOUNT, "db:orders/orders.audit.events", source_arn=None),
        ],
        [
            ExportedDataset(S3, f"{FOLDER}/orders/public.orders", gib(10)),
            ExportedDataset(S3, f"{FOLDER}/orders/audit.events", gib(3)),
        ],
    ),
    "postgres instance without DBName and no table info: by ARN": Case(
        export(),
        {**PG_INSTANCE, "DBName": None},
        None,
        None,
        "arn",
        [source_input(REGION_ACCOUNT, "db:orders")],
        [ExportedDataset(S3, FOLDER, gib(20))],
    ),
    "instance still creating (no Endpoint): by ARN": Case(
        export(),
        {key: value for key, value in PG_INSTANCE.items() if key != "Endpoint"},
        None,
        None,
        "arn",
        [source_input(REGION_ACCOUNT, "db:orders")],
        [ExportedDataset(S3, FOLDER, gib(20))],
    ),
    "live aurora cluster export: no snapshot ARN, the cluster by ARN": Case(
        export(SourceArn=MYSQL_CLUSTER["DBClusterArn"], SourceType="CLUSTER"),
        None,
        None,
        None,
        "arn",
        [
            source_input(
                REGION_ACCOUNT,
                "cluster:shop",
                snapshot_arn=None,
                **{"source_arn": MYSQL_CLUSTER["DBClusterArn"], "engine": None},
            )
        ],
        [ExportedDataset(S3, FOLDER, gib(20))],
    ),
    "FAILED export: it read the source, wrote nothing": Case(
        export(Status="FAILED", TotalExtractedDataInGB=None),
        PG_INSTANCE,
        None,
        None,
        "postgres",
        [source_input(PG, "orders")],
        [],
    ),
    "starting export: the intended folder, size unknown": Case(
        export(Status="STARTING", TotalExtractedDataInGB=None),
        PG_INSTANCE,
        None,
        None,
        "postgres",
        [source_input(PG, "orders")],
        [ExportedDataset(S3, FOLDER, None)],
    ),
    "path-unsafe characters and a dotted table name; listed twice counts once": Case(
        export(),
        PG_INSTANCE,
        None,
        [
            {"Table": 'orders.public.my "odd" table', "SizeGB": 1},
            {"Table": "orders.public.v1.2", "Status": "COMPLETE"},
            {"target": "orders.public.V1.2", "sizeGB": 2},
            {"Table": "orders", "Status": "COMPLETE"},  # a database-level entry: no table
        ],
        "postgres",
        [
            source_input(PG, 'orders.public.my "odd" table'),
            source_input(PG, "orders.public.v1.2"),
        ],
        [
            ExportedDataset(S3, f"{FOLDER}/orders/public.my__odd__table", gib(1)),
            ExportedDataset(S3, f"{FOLDER}/orders/public.v1.2", gib(2)),
        ],
    ),
    "nothing to name the source by, no bucket": Case(
        {"ExportTaskIdentifier": "x"}, None, None, None, "none", [], []
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=list(CASES))
def test_lineage_datasets(case: Case) -> None:
    lineage = lineage_datasets(case.export, case.source, case.snapshot, case.tables)
    assert (lineage.naming, list(lineage.inputs), list(lineage.outputs)) == (
        case.naming,
        case.inputs,
        case.outputs,
    )


def test_snapshot_time_falls_back_to_the_snapshot_description() -> None:
    lineage = lineage_datasets(export(SnapshotTime=None), PG_INSTANCE, PG_SNAPSHOT)
    assert [d.snapshot_time for d in lineage.inputs] == [SNAPSHOT_TIME]


# --- the OpenLineage provider's side ------------------------------------------------------


def test_export_lineage_builds_the_providers_classes_and_facets() -> None:
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        ExternalQueryRunFacet,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet

    lineage = export_lineage(export(), PG_INSTANCE, PG_SNAPSHOT, PG_TABLES)

    assert isinstance(lineage, OperatorLineage)
    assert [(type(d), d.namespace, d.name) for d in lineage.inputs] == [
        (Dataset, PG, "orders.public.orders"),
        (Dataset, PG, "orders.audit.events"),
    ]
    version = lineage.inputs[0].facets["version"]
    assert isinstance(version, DatasetVersionDatasetFacet)
    assert version.datasetVersion == SNAPSHOT_ARN
    snapshot = lineage.inputs[0].facets[SNAPSHOT_FACET]
    assert (snapshot.snapshotArn, snapshot.snapshotTime, snapshot.sourceArn, snapshot.engine) == (
        SNAPSHOT_ARN,
        SNAPSHOT_TIME,
        PG_INSTANCE["DBInstanceArn"],
        "postgres",
    )
    assert [(type(d), d.namespace, d.name) for d in lineage.outputs] == [
        (OutputDataset, S3, f"{FOLDER}/orders/public.orders"),
        (OutputDataset, S3, f"{FOLDER}/orders/audit.events"),
    ]
    statistics = lineage.outputs[0].outputFacets["outputStatistics"]
    assert isinstance(statistics, OutputStatisticsOutputDatasetFacet)
    assert statistics.size == gib(10)
    query = lineage.run_facets["externalQuery"]
    assert isinstance(query, ExternalQueryRunFacet)
    assert (query.externalQueryId, query.source) == ("orders-20261121", "rds")


def test_unknown_size_and_snapshot_leave_their_facets_out() -> None:
    lineage = export_lineage(
        export(SourceArn=MYSQL_CLUSTER["DBClusterArn"], SnapshotTime=None),
        {**MYSQL_CLUSTER, "DBClusterArn": None, "Engine": None},
        None,
        [{"Table": "shop.shop.orders"}],
    )
    assert lineage is not None
    assert [(d.namespace, d.name) for d in lineage.inputs] == [
        (REGION_ACCOUNT, "cluster:shop/shop.shop.orders")
    ]
    assert "version" not in lineage.inputs[0].facets
    assert lineage.outputs[0].outputFacets == {}


def test_the_providers_extractor_passes_the_lineage_on() -> None:
    """What the listener does with an operator's ``get_openlineage_facets_on_complete``."""
    from airflow.providers.openlineage.extractors.base import DefaultExtractor

    class Operator:
        task_type = "RdsExportTaskExistenceSensor"

        def get_openlineage_facets_on_complete(self, task_instance: object) -> Any:
            return export_lineage(export(), PG_INSTANCE)

    extracted = DefaultExtractor(Operator()).extract_on_complete(task_instance=None)
    assert extracted is not None
    assert [(d.namespace, d.name) for d in extracted.inputs] == [(PG, "orders")]
    assert [(d.namespace, d.name) for d in extracted.outputs] == [(S3, FOLDER)]
    # On failure, without get_openlineage_facets_on_failure, the same method answers.
    failed = DefaultExtractor(Operator()).extract_on_failure(task_instance=None)
    assert failed is not None and [d.name for d in failed.outputs] == [FOLDER]


def test_complete_event_through_the_file_transport_set_by_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployment recipe: ``AIRFLOW__OPENLINEAGE__TRANSPORT`` names the file transport;
    the provider's adapter redacts and writes the COMPLETE event, one JSON per line."""
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

    events = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv(
        "AIRFLOW__OPENLINEAGE__TRANSPORT",
        json.dumps({"type": "file", "log_file_path": str(events), "append": True}),
    )
    assert not conf.is_disabled()
    adapter = OpenLineageAdapter()
    adapter.complete_task(
        run_id="01932e6b-4a2c-7c5e-8d1f-0123456789ab",
        job_name="nightly_rds_export.wait_for_export",
        end_time="2026-11-21T04:00:00+00:00",
        task=export_lineage(export(), PG_INSTANCE, None, PG_TABLES),
        nominal_start_time=None,
        nominal_end_time=None,
        owners=["airflow"],
        tags=[],
        job_description=None,
    )
    assert adapter._client is not None and adapter._client.transport.kind == "file"

    [event] = [json.loads(line) for line in events.read_text().splitlines()]
    assert event["eventType"] == "COMPLETE"
    assert [(d["namespace"], d["name"]) for d in event["inputs"]] == [
        (PG, "orders.public.orders"),
        (PG, "orders.audit.events"),
    ]
    facets = event["inputs"][0]["facets"]
    assert facets["version"]["datasetVersion"] == SNAPSHOT_ARN
    assert {k: v for k, v in facets[SNAPSHOT_FACET].items() if not k.startswith("_")} == {
        "snapshotArn": SNAPSHOT_ARN,
        "snapshotTime": SNAPSHOT_TIME,
        "sourceArn": PG_INSTANCE["DBInstanceArn"],
        "engine": "postgres",
    }
    assert [(d["namespace"], d["name"]) for d in event["outputs"]] == [
        (S3, f"{FOLDER}/orders/public.orders"),
        (S3, f"{FOLDER}/orders/audit.events"),
    ]
    assert event["outputs"][0]["outputFacets"]["outputStatistics"]["size"] == gib(10)
    assert event["run"]["facets"]["externalQuery"]["externalQueryId"] == "orders-20261121"


def test_without_the_provider_export_lineage_returns_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A None entry in sys.modules makes the import raise ImportError, as if not installed.
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    assert export_lineage(export(), PG_INSTANCE) is None
    assert lineage_datasets(export(), PG_INSTANCE).naming == "postgres"


def test_importing_the_module_loads_neither_airflow_nor_openlineage(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import airflow_rds_export.lineage\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'openlineage'}))\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"]
