"""Sensor that waits for a Ground Truth labeling job, logging its label counters on every poke."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerBaseSensor
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException

from ground_truth_pipeline.aws.labeling_job_hook import (
    GroundTruthLabelingHook,
    format_label_counters,
    labeling_job_failure_message,
)
from ground_truth_pipeline.aws.labeling_job_trigger import SageMakerLabelingJobTrigger
from ground_truth_pipeline.aws.resumable_sagemaker_hook import attempts_within

if TYPE_CHECKING:
    from airflow.sdk import Context


class SageMakerLabelingJobSensor(SageMakerBaseSensor):
    """
    Poke DescribeLabelingJob until the job is Completed; fail with its reason and counters if it is not.

    Failed and Stopped fail the sensor with the job's FailureReason and label counters. With
    ``deferrable=True`` the sensor pokes once and, if the job is still running, waits in the triggerer.

    :param job_name: the labeling job to watch (templated).
    :param deferrable: wait in the triggerer instead of the worker.
    :param max_retries: the most status checks the trigger makes when deferred; by default as many as
        ``timeout`` allows at ``poke_interval``. ``timeout`` applies to the deferral too.
    :param aws_conn_id: the Airflow connection for AWS credentials.
    :param region_name: the AWS region; if not given, boto3's default.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: configuration dictionary for the botocore client.
    """

    aws_hook_class = GroundTruthLabelingHook
    template_fields: Sequence[str] = aws_template_fields("job_name")
    template_ext: Sequence[str] = ()

    def __init__(
        self,
        *,
        job_name: str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_retries: int | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.job_name = job_name
        self.deferrable = deferrable
        self.max_retries = max_retries or attempts_within(self.timeout, self.poke_interval)

    def non_terminal_states(self) -> set[str]:
        return set(GroundTruthLabelingHook.labeling_job_non_terminal_states)

    def failed_states(self) -> set[str]:
        return set(GroundTruthLabelingHook.labeling_job_failed_states)

    def get_sagemaker_response(self) -> dict[str, Any]:
        description = self.hook.describe_labeling_job(self.job_name)
        self.log.info(
            "Labeling job %s is %s; label counters: %s.",
            self.job_name,
            description["LabelingJobStatus"],
            format_label_counters(description["LabelCounters"]),
        )
        return description

    def get_failed_reason_from_response(self, response: dict[str, Any]) -> str:
        return labeling_job_failure_message(response)

    def state_from_response(self, response: dict[str, Any]) -> str:
        return response["LabelingJobStatus"]

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if not self.poke(context):
            self.defer(
                trigger=SageMakerLabelingJobTrigger(
                    job_name=self.job_name,
                    waiter_delay=int(self.poke_interval),
                    waiter_max_attempts=self.max_retries,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                timeout=timedelta(seconds=self.timeout),
            )
        return None

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        event = validate_execute_complete_event(event)
        if event["status"] != "success":
            raise AirflowException(event["message"])
        self.log.info("Labeling job %s completed.", event["job_name"])
