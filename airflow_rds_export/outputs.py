"""What an export task leaves for the data platform: console links, an asset event, lineage.

:class:`ExportOutputsMixin` is shared by the operators and the export sensors:

* **console links** (:mod:`airflow_rds_export.links`): the export task in the RDS console
  and its folder in the S3 console, persisted whenever the task learns the export;
* **an asset event** (:mod:`airflow_rds_export.assets`): once the export is COMPLETE, the
  export's folder through the task's ``AssetAlias``, which is among its ``outlets`` from
  the start (``asset_alias``, by default
  :func:`~airflow_rds_export.identifiers.export_asset_alias`);
* **OpenLineage** (:mod:`airflow_rds_export.lineage`):
  ``get_openlineage_facets_on_complete``, the database the export read and the S3
  folders it wrote, when the OpenLineage provider is installed.

Parse time costs one ``AssetAlias`` among the outlets; the asset, lineage and hook code is
imported inside the methods that run once the task does.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import AssetAlias

from airflow_rds_export.identifiers import export_asset_alias
from airflow_rds_export.validation import InvalidParameterError, validate_flag

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import BaseOperatorLink

    from airflow_rds_export.hooks import RdsExportHook

__all__ = ["ConsoleLinks", "ExportOutputsMixin", "validate_asset_alias"]


def validate_asset_alias(value: Any, field: str = "asset_alias") -> str | None:
    """None (the default name) or a non-empty name without surrounding spaces."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidParameterError(
            field, value, "must be a non-empty name without leading or trailing spaces, or None"
        )
    if len(value) > 1500:
        raise InvalidParameterError(field, value, "must be at most 1500 characters (Airflow's)")
    return value


class ConsoleLinks:
    """An operator's ``operator_extra_links``, taken from :mod:`airflow_rds_export.links`
    (``EXPORT_LINKS`` or ``SNAPSHOT_LINKS``) the first time Airflow reads them: when the DAG
    processor serialises the DAG, ``.expand()`` maps the task, or the task runs. Parsing a
    DAG file imports neither the links nor ``airflow.sdk.bases.operatorlink``."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, instance: object, owner: type | None = None) -> tuple[BaseOperatorLink, ...]:
        from airflow_rds_export import links

        links_of_task: tuple[BaseOperatorLink, ...] = getattr(links, self._name)
        return links_of_task


class ExportOutputsMixin:
    """Links, asset event and lineage of a task that starts, watches or cancels an export.

    The host is an Airflow operator with an ``AwsConnectionMixin`` (``hook``,
    ``region_name``) and a ``log``; :meth:`_init_outputs` runs in its ``__init__``.
    """

    if TYPE_CHECKING:  # what Airflow reads; the descriptor below returns it
        operator_extra_links: Collection[BaseOperatorLink]
    else:
        operator_extra_links = ConsoleLinks("EXPORT_LINKS")
    #: Whether the task reports OpenLineage datasets (a cancel exports nothing).
    reports_lineage: ClassVar[bool] = True
    asset_alias: str | None = None
    #: The export as last seen (started, adopted or COMPLETE), for lineage.
    _export_seen: dict[str, Any] | None = None

    # Provided by the host operator.
    dag_id: str
    task_id: str
    outlets: list[Any]
    region_name: str | None
    end_from_trigger: bool
    log: Any
    hook: RdsExportHook

    def _init_outputs(self, emit_asset: bool, asset_alias: str | None, *, completes: bool) -> None:
        """Parse time: with ``emit_asset`` on a task that sees exports COMPLETE
        (``completes``), declare the task's asset alias among its outlets."""
        validate_flag(emit_asset, "emit_asset")
        validate_asset_alias(asset_alias)
        self._export_seen = None
        if not (emit_asset and completes):
            self.asset_alias = None
            return
        self.asset_alias = asset_alias or export_asset_alias(self.dag_id, self.task_id)
        declared = {o.name for o in self.outlets if isinstance(o, AssetAlias)}
        if self.asset_alias not in declared:
            self.outlets = [*self.outlets, AssetAlias(self.asset_alias)]

    @property
    def resumes_to_announce(self) -> bool:
        """A trigger ending this task must still resume it on a worker for a COMPLETE
        export: Airflow 3.3's ``TaskSuccessEvent`` cannot carry an asset event."""
        return bool(self.end_from_trigger and self.asset_alias)

    def _seen(self, context: Mapping[str, Any], export_task: Mapping[str, Any] | None) -> None:
        """The task learned the export (started, adopted, described): link it."""
        if not export_task:
            return
        self._export_seen = dict(export_task)
        from airflow_rds_export.links import persist_export_links

        persist_export_links(context, export_task, self.region_name)

    def _announce(self, context: Mapping[str, Any], export_task: Mapping[str, Any]) -> None:
        """The wait ended successfully: link the export, and announce its data."""
        self._seen(context, export_task)
        if self.asset_alias and export_task:
            from airflow_rds_export.assets import emit_export_asset

            emit_export_asset(context, self.asset_alias, export_task, self.log)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        """The database the export read and the S3 folder(s) it wrote (OpenLineage).

        Describes the snapshot and its source instance / cluster (for the engine's dataset
        naming) and, for a verified COMPLETE export, reads its table list from S3 (one
        dataset per table). What cannot be described is named by ARN instead, with a
        warning: lineage never fails the task."""
        export_task = self._export_seen
        if not export_task or not self.reports_lineage:
            return None
        from airflow_rds_export.lineage import export_lineage

        snapshot, source, tables = self._lineage_context(export_task)
        return export_lineage(export_task, source, snapshot, tables)

    def _lineage_context(self, export_task: Mapping[str, Any]) -> tuple[Any, Any, Any]:
        from airflow_rds_export.decisions import export_wrote_data
        from airflow_rds_export.errors import AwsError
        from airflow_rds_export.verification import read_tables

        snapshot = source = tables = None
        step = "rds:DescribeDBSnapshots / DescribeDBClusterSnapshots"
        try:
            source_arn = export_task.get("SourceArn")
            if source_arn:
                snapshot = self.hook.describe_snapshot(str(source_arn))
                step = "rds:DescribeDBInstances / DescribeDBClusters"
                source = self.hook.describe_source_database(snapshot) if snapshot else None
            tables_read = (export_task.get("Tables") or {}).get("TablesInfoRead")
            if export_wrote_data(export_task) and tables_read:
                step = "s3:ListBucket / s3:GetObject on the export's folder"
                tables = read_tables(self.hook, export_task)
        except Exception as exc:
            error = AwsError.of(exc)
            self.log.warning(
                "OpenLineage: could not read what names the export's datasets (%s: %s); "
                "naming them by ARN / export folder instead. To do: allow %s",
                error.code or type(exc).__name__,
                error.message or exc,
                step,
            )
        return snapshot, source, tables
