"""boto3 clients for tests of the local SageMaker service."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from local_aws.config import LocalAwsConfig


def unvalidated_client(config: LocalAwsConfig, service: str) -> Any:
    """A client that sends what it is given, without retries, so the service's own validation answers."""
    return boto3.client(
        service,
        endpoint_url=config.sagemaker_endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
