"""Amazon RDS snapshot exports to S3, safely inside Apache Airflow 3 DAGs.

Importing this package is cheap: it imports neither boto3 nor botocore, so DAG files can
import it on every parse. The AWS SDK is loaded only when a task runs.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
