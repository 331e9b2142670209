"""Deferrable wait for a Ground Truth labeling job, run in the triggerer with the hook's custom waiter."""

from __future__ import annotations

from airflow.providers.amazon.aws.exceptions import WaiterTerminalFailure
from airflow.providers.amazon.aws.triggers.base import AwsBaseWaiterTrigger
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import TriggerEvent

from ground_truth_pipeline.aws.labeling_job_hook import (
    LABELING_JOB_COMPLETE_WAITER,
    LABELING_JOB_STATUS_QUERIES,
    GroundTruthLabelingHook,
    labeling_job_failure_message,
)


class SageMakerLabelingJobTrigger(AwsBaseWaiterTrigger):
    """
    Wait until a labeling job is Completed, Failed or Stopped, checking at most ``waiter_max_attempts`` times.

    Emits ``{"status": "success", "job_name": ...}`` when the job completed, otherwise
    ``{"status": "error", "job_name": ..., "job_status": ..., "message": ...}``. ``job_status`` is Failed or
    Stopped when the job ended that way (the message then holds its FailureReason and label counters), and
    None when waiting itself failed (attempts exhausted, an AWS error).

    :param job_name: the LabelingJobName to wait for.
    :param waiter_delay: seconds between two checks.
    :param waiter_max_attempts: the most checks before giving up.
    :param aws_conn_id: the Airflow connection for AWS credentials.
    :param region_name: the AWS region of the job.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: configuration dictionary for the botocore client.
    """

    aws_hook_class = GroundTruthLabelingHook

    def __init__(
        self,
        *,
        job_name: str,
        waiter_delay: int = 60,
        waiter_max_attempts: int = 4320,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict | None = None,
    ):
        self.job_name = job_name
        super().__init__(
            serialized_fields={"job_name": job_name},
            waiter_name=LABELING_JOB_COMPLETE_WAITER,
            waiter_args={"LabelingJobName": job_name},
            failure_message=f"Labeling job {job_name} ended unsuccessfully",
            status_message=f"Labeling job {job_name} is not done yet",
            status_queries=LABELING_JOB_STATUS_QUERIES,
            return_key="job_name",
            return_value=job_name,
            waiter_delay=waiter_delay,
            waiter_max_attempts=waiter_max_attempts,
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
        )

    def _event_from_exception(self, error: AirflowException) -> TriggerEvent:
        if isinstance(error, WaiterTerminalFailure):
            job_status = error.last_response["LabelingJobStatus"]
            message = labeling_job_failure_message(error.last_response)
        else:
            job_status = None
            message = f"Waiting for labeling job {self.job_name} failed: {error}"
        return TriggerEvent(
            {"status": "error", "job_name": self.job_name, "job_status": job_status, "message": message}
        )
