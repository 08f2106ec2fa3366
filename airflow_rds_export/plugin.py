"""The Airflow plugin that puts this package's template macros under ``macros.rds_export``.

``{{ macros.rds_export.identifier("orders_prod", ds_nodash) }}`` builds a valid export
task identifier in a template (:func:`~airflow_rds_export.identifiers.export_identifier`).
``{{ macros.rds_export.announced_snapshot(triggering_asset_events).arn }}`` reads the
snapshot an RDS event announced (:mod:`~airflow_rds_export.announcements`).
Registered through the ``airflow.plugins`` entry point; importing it is cheap (no boto3).
"""

from __future__ import annotations

from airflow.sdk.plugins_manager import AirflowPlugin

from airflow_rds_export.announcements import announced_snapshot, announced_snapshots
from airflow_rds_export.identifiers import export_identifier

__all__ = ["RdsExportPlugin", "announced_snapshot", "announced_snapshots", "identifier"]


def identifier(*parts: object, max_length: int = 60) -> str:
    """``macros.rds_export.identifier(...)``: :func:`export_identifier` in templates
    (Airflow names a plugin's macros by their function's ``__name__``)."""
    return export_identifier(*parts, max_length=max_length)


class RdsExportPlugin(AirflowPlugin):
    """Template macros of airflow-rds-export."""

    name = "rds_export"
    macros = [identifier, announced_snapshot, announced_snapshots]  # noqa: RUF012 (AirflowPlugin's own attribute is a list)
