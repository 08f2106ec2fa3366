"""Provider metadata read by Airflow's providers manager (``airflow providers list``)."""

from __future__ import annotations

from typing import Any

from airflow_rds_export import __version__

__all__ = ["get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow discovers through the entry point."""
    return {
        "package-name": "airflow-rds-export",
        "name": "Amazon RDS snapshot export",
        "description": (
            "Operators, sensors and triggers that export Amazon RDS / Aurora snapshots to "
            "Amazon S3 with explicit reschedule / skip / fail decisions for invalid states."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Amazon RDS snapshot export",
                "external-doc-url": (
                    "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ExportSnapshot.html"
                ),
                "tags": ["aws"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon RDS snapshot export",
                "python-modules": ["airflow_rds_export.hooks"],
            }
        ],
        "operators": [
            {
                "integration-name": "Amazon RDS snapshot export",
                "python-modules": ["airflow_rds_export.operators"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Amazon RDS snapshot export",
                "python-modules": ["airflow_rds_export.sensors"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Amazon RDS snapshot export",
                "python-modules": [
                    "airflow_rds_export.triggers",
                    "airflow_rds_export.event_triggers",
                ],
            }
        ],
        "extra-links": [
            "airflow_rds_export.links.RdsExportTaskLink",
            "airflow_rds_export.links.S3ExportPrefixLink",
            "airflow_rds_export.links.RdsSnapshotLink",
        ],
    }
