"""boto3 clients for the steps, made through the Amazon provider's hooks from one Airflow connection.

The connection decides where the pipeline's calls go (its ``endpoint_url`` and ``service_config`` extras:
AWS by default, or any service that answers AWS's APIs); the pipeline never asks which. With ``conn_id=None``
the hooks fall back to boto3's own configuration, which is what tests use with moto.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any


class AwsClients:
    """Lazily created clients, one of each kind, sharing one connection."""

    def __init__(self, conn_id: str | None = "aws_default") -> None:
        self.conn_id = conn_id

    @cached_property
    def _sagemaker_hook(self) -> Any:
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        return SageMakerHook(aws_conn_id=self.conn_id)

    @cached_property
    def s3(self) -> Any:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.conn_id).get_conn()

    @cached_property
    def sagemaker(self) -> Any:
        return self._sagemaker_hook.conn

    @cached_property
    def sagemaker_runtime(self) -> Any:
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        return AwsBaseHook(aws_conn_id=self.conn_id, client_type="sagemaker-runtime").conn

    @cached_property
    def logs(self) -> Any:
        from airflow.providers.amazon.aws.hooks.logs import AwsLogsHook

        return AwsLogsHook(aws_conn_id=self.conn_id).conn

    @cached_property
    def region(self) -> str:
        region = self._sagemaker_hook.conn_region_name
        if not region:
            raise ValueError(
                f"No AWS region: set region_name in the extras of the Airflow connection {self.conn_id!r} "
                "(or AWS_DEFAULT_REGION)"
            )
        return region
