"""An export's OpenLineage datasets: the database it read, the S3 folder it wrote.

Pure: the operators and sensors describe what they need (the export task, and when they
can, the source instance or cluster and the snapshot) and hand the descriptions here.
:func:`lineage_datasets` names the datasets as plain tuples; :func:`export_lineage` turns
them into the OpenLineage provider's ``OperatorLineage`` for a
``get_openlineage_facets_on_*`` method. The provider is optional (``pip install
airflow-rds-export[openlineage]``) and imported only inside :func:`export_lineage`:
without it, nothing here is imported and :func:`export_lineage` returns None, which the
provider's extractor reads as "no lineage".

Naming, after the OpenLineage spec's ``naming.md`` (and ``openlineage.client.naming``):

* **the input, by engine** when the source instance or cluster could be described: its
  endpoint and port, ``postgres://{host}:{port}`` (``postgres``, ``aurora-postgresql``)
  or ``mysql://{host}:{port}`` (``mysql``, ``mariadb``, ``aurora-mysql``), the scheme and
  authority Airflow's own Postgres and MySQL hooks report, so a query task on the same
  database meets the export in the lineage graph. The name is ``{database}.{schema}.{table}``
  (PostgreSQL) or ``{database}.{table}`` (MySQL) per exported table; without table
  information, each ``ExportOnly`` entry as written, else the source's ``DBName`` /
  ``DatabaseName``. For an Aurora cluster, its (writer) ``Endpoint``.
* **the input, by ARN** otherwise (the source is gone, in another account, of another
  engine, or not described; or no database can be named). The spec names no RDS dataset,
  so this follows its AWS Glue entry (namespace ``arn:aws:glue:{region}:{account id}``,
  name ``table/{db}/{table}``): namespace ``arn:{partition}:rds:{region}:{account}``, name
  the ARN's resource, ``db:{instance}`` or ``cluster:{cluster}`` (namespace, ``:`` and
  name give the source's ARN), else the snapshot's (``snapshot:{name}``,
  ``cluster-snapshot:{name}``); a table or ``ExportOnly`` entry follows after ``/``
  (``db:orders/orders.public.customers``).
* **the outputs**: namespace ``s3://{bucket}``, name the object key prefix without a
  trailing slash: the export's folder ``{prefix}/{id}`` (``{id}`` without a prefix), or per
  exported table its folder ``{prefix}/{id}/{db}/{schema}.{table}`` (MySQL
  ``{db}/{db}.{table}``), the layout the RDS user guide documents (``\\``, backtick, ``"``
  and space become ``_`` in paths). An export that FAILED or was CANCELED wrote nothing:
  no output.

Facets: each input carries ``version`` (``DatasetVersionDatasetFacet``: the snapshot's ARN,
the version of the database the export read) and ``rdsSnapshot`` (``snapshotArn``,
``snapshotTime``, ``sourceArn``, ``engine``: no standard facet holds a snapshot's time);
each output its size in bytes when known, as ``outputStatistics``
(``OutputStatisticsOutputDatasetFacet``; AWS's GB read as 2**30 bytes); the run
``externalQuery`` (``ExternalQueryRunFacet``: the export task identifier, source ``rds``,
as the Amazon provider's Athena operator names its query).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_rds_export.decisions import (
    EXPORT_ERROR_STATUSES,
    TABLE_COMPLETE_STATUS,
    normalise_status,
)
from airflow_rds_export.export_metadata import ExportTables, TableStatus

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

__all__ = [
    "BYTES_PER_GB",
    "MYSQL_ENGINES",
    "POSTGRES_ENGINES",
    "SNAPSHOT_FACET",
    "ExportLineage",
    "ExportedDataset",
    "SourceDataset",
    "export_lineage",
    "lineage_datasets",
]

POSTGRES_ENGINES = frozenset({"postgres", "aurora-postgresql"})
MYSQL_ENGINES = frozenset({"mysql", "mariadb", "aurora-mysql", "aurora"})
_SCHEMES = {"postgres": POSTGRES_ENGINES, "mysql": MYSQL_ENGINES}
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
#: AWS's "GB" in export sizes, in bytes (AWS bills a GB as 2**30 bytes; the export files
#: do not say which they mean: UNCONFIRMED).
BYTES_PER_GB = 2**30
#: The custom dataset facet that carries the snapshot an input was read from.
SNAPSHOT_FACET = "rdsSnapshot"
# Characters RDS replaces by "_" in the paths it writes (RDS user guide, "File naming").
# Patterns are strings, compiled (and cached by ``re``) on first use, not on import.
_PATH_UNSAFE = r'[\\`" ]'
_ARN = r"arn:(?P<partition>[^:]+):rds:(?P<region>[^:]*):(?P<account>[^:]*):(?P<resource>.+)"


class SourceDataset(NamedTuple):
    """An input: the database (or one table of it) the export read.

    ``snapshot_arn`` is None for an export of a live Aurora cluster; ``snapshot_time``
    is ISO 8601 as AWS reported it; ``source_arn`` the instance's or cluster's ARN.
    """

    namespace: str
    name: str
    snapshot_arn: str | None = None
    snapshot_time: str | None = None
    source_arn: str | None = None
    engine: str | None = None


class ExportedDataset(NamedTuple):
    """An output: the S3 folder the export (or one table of it) was written to."""

    namespace: str
    name: str
    size_bytes: int | None = None


class ExportLineage(NamedTuple):
    """An export's datasets. ``naming`` says how the inputs were named: ``"postgres"`` or
    ``"mysql"`` (by endpoint), ``"arn"`` (the fallback) or ``"none"`` (no input known)."""

    inputs: tuple[SourceDataset, ...]
    outputs: tuple[ExportedDataset, ...]
    export_task_identifier: str | None
    naming: str


class _Table(NamedTuple):
    target: str
    size_gb: float | None


class _Source(NamedTuple):
    """What naming the input needs, gathered from the three descriptions."""

    scheme: str | None  # "postgres" / "mysql" when the engine exports with that layout
    host: str | None
    port: int | None
    database: str | None
    engine: str | None
    source_arn: str | None
    snapshot_arn: str | None
    snapshot_time: str | None
    arn_namespace: str | None
    arn_resource: str | None


def lineage_datasets(
    export: Mapping[str, Any],
    source: Mapping[str, Any] | None = None,
    snapshot: Mapping[str, Any] | None = None,
    tables: ExportTables | Iterable[TableStatus | Mapping[str, Any]] | None = None,
) -> ExportLineage:
    """Name an export's input and output datasets (see the module's docstring).

    :param export: the export task's description (DescribeExportTasks, or the XCom an
        operator or sensor pushes: ``SourceArn``, ``S3Bucket``, ``S3Prefix``,
        ``ExportTaskIdentifier``, ``SnapshotTime``, ``ExportOnly``, ``Status``,
        ``TotalExtractedDataInGB``, and ``Tables`` with its ``TotalGB``).
    :param source: the source instance (a DescribeDBInstances ``DBInstances`` entry:
        ``Endpoint.Address``, ``Endpoint.Port``, ``DBName``, ``Engine``, ``DBInstanceArn``)
        or cluster (DescribeDBClusters ``DBClusters`` entry: ``Endpoint``, ``Port``,
        ``DatabaseName``, ``Engine``, ``DBClusterArn``); None when not described.
    :param snapshot: the snapshot exported (DescribeDBSnapshots / DescribeDBClusterSnapshots
        entry: its ARN, ``SnapshotCreateTime``, ``Engine``, ``Port``, the source's
        identifier); None when not described.
    :param tables: the export's tables, when read: an
        :class:`~airflow_rds_export.export_metadata.ExportTables`, its ``TableStatus``
        entries, or mappings with ``Table`` (or ``target``), optional ``SizeGB`` (or
        ``sizeGB``) and ``Status`` (absent: exported). Only COMPLETE tables are datasets;
        with none, the export as a whole is.
    """
    found = _source(export, source or {}, snapshot or {})
    exported = _complete_tables(tables)
    naming, names = _input_names(found, exported, _export_only(export.get("ExportOnly")))
    inputs = tuple(
        SourceDataset(
            namespace, name, found.snapshot_arn, found.snapshot_time, found.source_arn, found.engine
        )
        for namespace, name in names
    )
    outputs = _outputs(export, exported, mysql=found.scheme == "mysql")
    return ExportLineage(inputs, outputs, _text(export.get("ExportTaskIdentifier")), naming)


def export_lineage(
    export: Mapping[str, Any],
    source: Mapping[str, Any] | None = None,
    snapshot: Mapping[str, Any] | None = None,
    tables: ExportTables | Iterable[TableStatus | Mapping[str, Any]] | None = None,
) -> OperatorLineage | None:
    """:func:`lineage_datasets` as the OpenLineage provider's ``OperatorLineage``, built
    with its dataset and facet classes; None when the provider is not installed."""
    try:
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            DatasetFacet,
            ExternalQueryRunFacet,
            OutputDataset,
            OutputStatisticsOutputDatasetFacet,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.generated.dataset_version_dataset import (
            DatasetVersionDatasetFacet,
        )
    except ImportError:
        return None
    lineage = lineage_datasets(export, source, snapshot, tables)

    def input_facets(dataset: SourceDataset) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if dataset.snapshot_arn:
            facets["version"] = DatasetVersionDatasetFacet(datasetVersion=dataset.snapshot_arn)
        described = {
            "snapshotArn": dataset.snapshot_arn,
            "snapshotTime": dataset.snapshot_time,
            "sourceArn": dataset.source_arn,
            "engine": dataset.engine,
        }
        if any(value is not None for value in described.values()):
            facets[SNAPSHOT_FACET] = DatasetFacet().with_additional_properties(**described)
        return facets

    def output_facets(dataset: ExportedDataset) -> dict[str, Any]:
        if dataset.size_bytes is None:
            return {}
        return {"outputStatistics": OutputStatisticsOutputDatasetFacet(size=dataset.size_bytes)}

    run_facets: dict[str, Any] = {}
    if lineage.export_task_identifier:
        run_facets["externalQuery"] = ExternalQueryRunFacet(
            externalQueryId=lineage.export_task_identifier, source="rds"
        )
    return OperatorLineage(
        inputs=[
            Dataset(namespace=d.namespace, name=d.name, facets=input_facets(d))
            for d in lineage.inputs
        ],
        outputs=[
            OutputDataset(namespace=d.namespace, name=d.name, outputFacets=output_facets(d))
            for d in lineage.outputs
        ],
        run_facets=run_facets,
    )


# --- the input ------------------------------------------------------------------------------


def _source(
    export: Mapping[str, Any], source: Mapping[str, Any], snapshot: Mapping[str, Any]
) -> _Source:
    engine = _text(source.get("Engine")) or _text(snapshot.get("Engine"))
    family = _family(engine)
    endpoint = source.get("Endpoint")
    if isinstance(endpoint, Mapping):  # an instance: Endpoint {Address, Port}
        host, port = _text(endpoint.get("Address")), _port(endpoint.get("Port"))
    else:  # a cluster: Endpoint is the writer endpoint's DNS name, Port beside it
        host, port = _text(endpoint), _port(source.get("Port"))
    if port is None:
        port = _port(snapshot.get("Port"))
    if port is None and family is not None:
        port = _DEFAULT_PORTS[family]
    # What was exported: a snapshot, or (Aurora) a live cluster, whose ARN is the source's.
    exported_arn = (
        _text(export.get("SourceArn"))
        or _text(snapshot.get("DBSnapshotArn"))
        or _text(snapshot.get("DBClusterSnapshotArn"))
        or _text(snapshot.get("SourceArn"))  # descriptions.with_source_arn's
    )
    live_cluster = exported_arn is not None and _resource_type(exported_arn) == "cluster"
    snapshot_arn = None if live_cluster else exported_arn
    source_arn = (
        _text(source.get("DBInstanceArn"))
        or _text(source.get("DBClusterArn"))
        or (exported_arn if live_cluster else None)
    )
    resource = (
        _arn_resource(source_arn) or _identifier_resource(source) or _identifier_resource(snapshot)
    )
    parsed = re.fullmatch(_ARN, source_arn or snapshot_arn or "")
    namespace = None
    if parsed:
        namespace = f"arn:{parsed['partition']}:rds:{parsed['region']}:{parsed['account']}"
        resource = resource or parsed["resource"]
    return _Source(
        scheme=family,
        host=host.lower() if host else None,
        port=port,
        database=_text(source.get("DBName")) or _text(source.get("DatabaseName")),
        engine=engine,
        source_arn=source_arn,
        snapshot_arn=snapshot_arn,
        snapshot_time=_time(export.get("SnapshotTime"))
        or _time(snapshot.get("SnapshotCreateTime"))
        or _time(snapshot.get("OriginalSnapshotCreateTime")),
        arn_namespace=namespace,
        arn_resource=resource,
    )


def _input_names(
    found: _Source, tables: tuple[_Table, ...], entries: list[str]
) -> tuple[str, list[tuple[str, str]]]:
    """How the inputs are named (``ExportLineage.naming``), and their (namespace, name)."""
    mysql = found.scheme == "mysql"
    # The tables exported, else the ExportOnly entries, else the whole source.
    parts = [_table_name(t.target, mysql=mysql) for t in tables] or [
        _entry_name(entry, mysql=mysql) for entry in entries
    ]
    if found.scheme is not None and found.host is not None:
        namespace = f"{found.scheme}://{found.host}:{found.port}"
        if parts:
            return found.scheme, _unique((namespace, part) for part in parts)
        if found.database:
            return found.scheme, [(namespace, found.database)]
    if found.arn_namespace is None or found.arn_resource is None:
        return "none", []
    if not parts:
        return "arn", [(found.arn_namespace, found.arn_resource)]
    return "arn", _unique((found.arn_namespace, f"{found.arn_resource}/{part}") for part in parts)


def _table_name(target: str, *, mysql: bool) -> str:
    """A table's dataset name: ``db.schema.table`` as AWS wrote it (PostgreSQL);
    ``db.table`` (MySQL, whose exports name tables ``db.db.table``: UNCONFIRMED)."""
    if not mysql:
        return target
    database, schema, table = _split_target(target)
    if schema is None or schema.lower() == database.lower():
        return f"{database}.{table}"
    return f"{database}.{schema}.{table}"  # not MySQL's layout: keep every part


def _entry_name(entry: str, *, mysql: bool) -> str:
    """An ``ExportOnly`` entry (``db``, ``db.schema``, ``db.schema.table``; MySQL ``db``,
    ``db.table``) as a dataset name: as written, but a MySQL ``db.db.table`` as
    ``db.table``."""
    return _table_name(entry, mysql=True) if mysql and entry.count(".") >= 2 else entry


# --- the outputs ----------------------------------------------------------------------------


def _outputs(
    export: Mapping[str, Any], tables: tuple[_Table, ...], *, mysql: bool
) -> tuple[ExportedDataset, ...]:
    bucket = _text(export.get("S3Bucket"))
    identifier = _text(export.get("ExportTaskIdentifier"))
    if bucket is None or identifier is None:
        return ()
    if normalise_status(export.get("Status")) in EXPORT_ERROR_STATUSES:
        return ()  # a FAILED or CANCELED export wrote nothing to speak of
    namespace = f"s3://{bucket}"
    prefix = (_text(export.get("S3Prefix")) or "").strip("/")
    folder = f"{prefix}/{identifier}" if prefix else identifier
    if not tables:
        return (ExportedDataset(namespace, folder, _bytes(_total_gb(export))),)
    seen: dict[str, ExportedDataset] = {}
    for table in tables:
        name = f"{folder}/{_table_folder(table.target, mysql=mysql)}"
        seen.setdefault(name, ExportedDataset(namespace, name, _bytes(table.size_gb)))
    return tuple(seen.values())


def _table_folder(target: str, *, mysql: bool) -> str:
    """Where RDS writes a table: ``{db}/{schema}.{table}``; MySQL ``{db}/{db}.{table}``."""
    database, schema, table = _split_target(target)
    if schema is None:
        schema = database if mysql else None
    folder = f"{database}/{schema}.{table}" if schema is not None else f"{database}/{table}"
    return re.sub(_PATH_UNSAFE, "_", folder)


def _total_gb(export: Mapping[str, Any]) -> float | None:
    """The export's size: its verified ``Tables.TotalGB``, else ``TotalExtractedDataInGB``."""
    verdict = export.get("Tables")
    total = verdict.get("TotalGB") if isinstance(verdict, Mapping) else None
    if total is None:
        total = export.get("TotalExtractedDataInGB")
    return _gb(total)


# --- reading the descriptions ---------------------------------------------------------------


def _complete_tables(
    tables: ExportTables | Iterable[TableStatus | Mapping[str, Any]] | None,
) -> tuple[_Table, ...]:
    """The COMPLETE tables, each once (first spelling, first size given)."""
    if tables is None:
        return ()
    entries = tables.tables if isinstance(tables, ExportTables) else tables
    found: dict[str, _Table] = {}
    for entry in entries:
        target: str | None
        if isinstance(entry, TableStatus):
            target, status, size = entry.target, entry.status, entry.size_gb
        elif isinstance(entry, Mapping):
            target = _text(entry.get("Table") or entry.get("target"))
            status = entry.get("Status", entry.get("status", "COMPLETE"))
            size = _gb(entry.get("SizeGB", entry.get("sizeGB")))
        else:
            continue
        # A target without a dot names a database (a warning's entry), not a table.
        if not target or "." not in target:
            continue
        if normalise_status(status) != TABLE_COMPLETE_STATUS:
            continue
        seen = found.get(target.lower())
        if seen is None:
            found[target.lower()] = _Table(target, size)
        elif seen.size_gb is None and size is not None:
            found[target.lower()] = seen._replace(size_gb=size)
    return tuple(found.values())


def _export_only(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return [text for item in value if (text := _text(item))]


def _split_target(target: str) -> tuple[str, str | None, str]:
    """``db.schema.table`` (a table name may hold dots: the rest after two), ``db.table``."""
    parts = target.split(".", 2)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return parts[0], None, parts[1]
    return target, None, target


def _family(engine: str | None) -> str | None:
    lowered = (engine or "").lower()
    return next((scheme for scheme, engines in _SCHEMES.items() if lowered in engines), None)


def _resource_type(arn: str) -> str | None:
    parsed = re.fullmatch(_ARN, arn)
    return parsed["resource"].split(":", 1)[0] if parsed else None


def _arn_resource(arn: str | None) -> str | None:
    parsed = re.fullmatch(_ARN, arn or "")
    return parsed["resource"] if parsed else None


def _identifier_resource(described: Mapping[str, Any]) -> str | None:
    """``db:{id}`` / ``cluster:{id}`` from a description's source identifier (a DB
    snapshot names its instance, a cluster snapshot its cluster)."""
    if instance := _text(described.get("DBInstanceIdentifier")):
        return f"db:{instance}"
    cluster = _text(described.get("DBClusterIdentifier"))
    return f"cluster:{cluster}" if cluster else None


def _unique(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    return list(dict.fromkeys(pairs))


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _port(value: Any) -> int | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return None
    return port if 0 < port < 65536 else None


def _gb(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _bytes(size_gb: float | None) -> int | None:
    return None if size_gb is None else round(size_gb * BYTES_PER_GB)


def _time(value: Any) -> str | None:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return _text(value)
