"""A SageMaker hook for Ground Truth labeling jobs: create, describe, stop, and wait for completion.

boto3 has no waiter for labeling jobs, so this hook ships one, ``LabelingJobComplete`` in
``labeling_job_waiters.json``. The provider's waiter machinery runs it both synchronously
(``waiter_with_logging.wait`` on the boto3 client) and in a trigger (``get_waiter(deferrable=True)`` on the
aiobotocore client from ``get_async_conn``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any

from airflow.providers.amazon.aws.exceptions import WaiterMaxAttemptsError, WaiterTerminalFailure
from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.sdk.exceptions import AirflowException

LABELING_JOB_COMPLETE_WAITER = "LabelingJobComplete"
# JMESPath queries into DescribeLabelingJob that the waiter logs after every check: status and progress.
LABELING_JOB_STATUS_QUERIES = ["LabelingJobStatus", "LabelCounters"]


class GroundTruthLabelingHook(SageMakerHook):
    """
    Interact with SageMaker Ground Truth labeling jobs.

    Statuses of a labeling job: Initializing, InProgress, Completed, Failed, Stopping, Stopped.

    The hook's custom waiters come from ``labeling_job_waiters.json`` instead of the provider's
    ``sagemaker.json``; use :class:`SageMakerHook` to wait for training, transform or processing jobs.
    """

    labeling_job_running_states = frozenset({"Initializing", "InProgress"})
    labeling_job_non_terminal_states = frozenset({*labeling_job_running_states, "Stopping"})
    labeling_job_failed_states = frozenset({"Failed", "Stopped"})

    @cached_property
    def waiter_path(self) -> Path:
        return Path(__file__).with_name("labeling_job_waiters.json")

    def create_labeling_job(self, config: dict[str, Any]) -> str:
        """Start a labeling job from a CreateLabelingJob request and return its ARN."""
        return self.get_conn().create_labeling_job(**config)["LabelingJobArn"]

    def describe_labeling_job(self, name: str) -> dict[str, Any]:
        return self.get_conn().describe_labeling_job(LabelingJobName=name)

    def find_labeling_job(self, name: str) -> dict[str, Any] | None:
        """
        Describe the labeling job called ``name``, or return None when there is none.

        SageMaker's model declares ``ResourceNotFound`` as the error of DescribeLabelingJob for a missing
        job; it is not the ``ValidationException`` the provider's ``_check_if_job_exists`` expects for
        training or transform jobs. Any other error is raised.
        """
        conn = self.get_conn()
        try:
            return conn.describe_labeling_job(LabelingJobName=name)
        except conn.exceptions.ResourceNotFound:
            return None

    def stop_labeling_job(self, name: str) -> None:
        self.get_conn().stop_labeling_job(LabelingJobName=name)

    def echoed_request_fields(self) -> frozenset[str]:
        """The top-level CreateLabelingJob request fields that DescribeLabelingJob returns, per botocore."""
        model = self.get_conn().meta.service_model
        request_fields = model.operation_model("CreateLabelingJob").input_shape.members
        described_fields = model.operation_model("DescribeLabelingJob").output_shape.members
        return frozenset(request_fields) & frozenset(described_fields)

    def wait_for_labeling_job(self, name: str, check_interval: int, max_attempts: int) -> dict[str, Any]:
        """
        Poll until the job is Completed, Failed or Stopped, and return its last description.

        A Failed or Stopped job is returned, not raised, so that callers handle it like one they find
        already finished. Raises when the job is still running after ``max_attempts`` checks.
        """
        try:
            wait(
                waiter=self.get_waiter(LABELING_JOB_COMPLETE_WAITER),
                waiter_delay=check_interval,
                waiter_max_attempts=max_attempts,
                args={"LabelingJobName": name},
                failure_message=f"Labeling job {name} ended unsuccessfully",
                status_message=f"Labeling job {name} is not done yet",
                status_args=LABELING_JOB_STATUS_QUERIES,
            )
        except WaiterTerminalFailure as failure:
            return failure.last_response
        except WaiterMaxAttemptsError as timeout:
            raise AirflowException(
                f"Labeling job {name} was still running after {max_attempts} checks {check_interval} s apart"
            ) from timeout
        return self.describe_labeling_job(name)


def format_label_counters(counters: Mapping[str, int]) -> str:
    """``TotalLabeled=3, HumanLabeled=3, ...`` in the order SageMaker returns them."""
    return ", ".join(f"{name}={count}" for name, count in counters.items())


def labeling_job_failure_message(description: Mapping[str, Any]) -> str:
    """Why a Failed or Stopped job ended, with its label counters, from a DescribeLabelingJob response."""
    reason = description.get("FailureReason") or "SageMaker gave no FailureReason"
    return (
        f"Labeling job {description['LabelingJobName']} is {description['LabelingJobStatus']}: {reason} "
        f"(label counters: {format_label_counters(description['LabelCounters'])})"
    )


def labeling_job_summary(description: Mapping[str, Any]) -> dict[str, Any]:
    """
    The small XCom of a labeling job, keyed by DescribeLabelingJob's own names.

    ``LabelingJobName``, ``LabelingJobArn``, ``LabelingJobStatus``, ``OutputDatasetS3Uri`` (from
    ``LabelingJobOutput``; None until the job completed) and ``LabelCounters``.
    """
    return {
        "LabelingJobName": description["LabelingJobName"],
        "LabelingJobArn": description["LabelingJobArn"],
        "LabelingJobStatus": description["LabelingJobStatus"],
        "OutputDatasetS3Uri": description.get("LabelingJobOutput", {}).get("OutputDatasetS3Uri"),
        "LabelCounters": dict(description["LabelCounters"]),
    }
