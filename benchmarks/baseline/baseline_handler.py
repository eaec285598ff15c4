"""The yardstick for a cold start: a bare Powertools handler that builds one boto3 client.

Logger, Metrics and Tracer as every TokenWarden handler uses them, and one client made at import,
as Powertools' own examples make theirs. benchmarks/test_import_time.py times the import of each
TokenWarden handler against the import of this module, both from the built layer.
"""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
tracer = Tracer()
secrets = boto3.client("secretsmanager")


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"secrets": len(secrets.list_secrets(MaxResults=1).get("SecretList", []))}
