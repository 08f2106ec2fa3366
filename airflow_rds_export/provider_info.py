"""Provider metadata read by Airflow's providers manager (``airflow providers list``).

Its how-to guides and ``docs-url`` point at the documentation site's pages
(:data:`DOCS_BASE_URL`); the integration's ``external-doc-url`` stays AWS's user guide.
"""

from __future__ import annotations

from typing import Any

from airflow_rds_export import __version__

__all__ = ["DOCS_BASE_URL", "get_provider_info"]

#: Where the documentation site (``docs/``, ``mkdocs.yml``'s ``site_url``) is meant to be
#: published. Not published yet: until it is, build it from a clone
#: (``.venv/bin/mkdocs build --strict``); the page paths below are the built site's.
DOCS_BASE_URL = "https://airflow-rds-export.readthedocs.io/en/latest/"

#: The site's how-to guides, one per job. Airflow's provider_info schema takes
#: ``how-to-guide`` on the integration (as the Amazon provider lists its guides), not on
#: the operators / sensors / triggers entries (triggers' entries forbid other keys).
_HOW_TO_GUIDES = (
    "getting-started/",
    "how-to/nightly-export/",
    "how-to/fleet/",
    "how-to/migrate/",
    "how-to/verify-tables/",
    "how-to/downstream/",
    "how-to/lineage/",
    "how-to/event-driven/",
    "how-to/production/",
    "how-to/testing/",
)


def _docs(*pages: str) -> list[str]:
    return [DOCS_BASE_URL + page for page in pages]


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
                "how-to-guide": _docs(*_HOW_TO_GUIDES),
            }
        ],
        "docs-url": DOCS_BASE_URL,
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
