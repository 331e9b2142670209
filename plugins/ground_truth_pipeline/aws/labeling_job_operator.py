"""Operator that creates a Ground Truth labeling job, or attaches to the job its request already started.

Resource names are derived from the DAG run, so a retried or cleared task sends the same LabelingJobName
again. SageMaker keeps labeling job names unique for good, so instead of failing on the name clash the
operator describes the job first: the same request attaches to the existing job (waits or defers on it),
a different request under the same name is an error that lists the differing fields.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerBaseOperator
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.sdk import conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ground_truth_pipeline.aws.labeling_job_hook import (
    GroundTruthLabelingHook,
    format_label_counters,
    labeling_job_failure_message,
    labeling_job_summary,
)
from ground_truth_pipeline.aws.labeling_job_trigger import SageMakerLabelingJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

# Short reprs of differing values, so a mismatch error stays readable for long template URIs or lists.
_value_repr = reprlib.Repr()
_value_repr.maxstring = _value_repr.maxother = 80


def _is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _differences(wanted: Any, actual: Any, path: str) -> list[str]:
    if _is_empty(wanted) and _is_empty(actual):
        return []
    if isinstance(wanted, Mapping) and isinstance(actual, Mapping):
        return [
            line for key in wanted for line in _differences(wanted[key], actual.get(key), f"{path}.{key}")
        ]
    if isinstance(wanted, list) and isinstance(actual, list) and len(wanted) == len(actual):
        pairs = enumerate(zip(wanted, actual, strict=True))
        return [line for i, (w, a) in pairs for line in _differences(w, a, f"{path}[{i}]")]
    if wanted == actual:
        return []
    return [f"{path} (config {_value_repr.repr(wanted)}, job {_value_repr.repr(actual)})"]


def request_differences(
    request: Mapping[str, Any], description: Mapping[str, Any], fields: Iterable[str]
) -> list[str]:
    """
    Compare a CreateLabelingJob request with an existing job's DescribeLabelingJob response.

    Only the top-level ``fields`` are compared: the request fields that DescribeLabelingJob echoes
    (:meth:`GroundTruthLabelingHook.echoed_request_fields`). With botocore 1.43 that is every
    CreateLabelingJob field, Tags included, so none is ignored today; a field a later service model adds
    to the request without echoing it would be skipped. Every value the request sets, at any depth, must
    equal the described one. Values the request leaves out are not compared: SageMaker fills in defaults
    for some (``HumanTaskConfig.MaxConcurrentTaskCount`` for one), and a retried task must not fail on
    its own job because of them. A missing value and an empty list or mapping are the same.

    Returns one ``path (config ..., job ...)`` entry per difference, in field order.
    """
    return [
        line
        for field in sorted(fields)
        if field in request
        for line in _differences(request[field], description.get(field), field)
    ]


class SageMakerCreateLabelingJobOperator(SageMakerBaseOperator):
    """
    Start a SageMaker Ground Truth labeling job, or attach to the one already started with this request.

    Before creating, the operator describes the job named by ``config["LabelingJobName"]``. If it exists
    and matches every value ``config`` sets (see :func:`request_differences`), the operator attaches to it
    instead of creating a second job; if the request differs, the task fails with the differing fields.
    A job that is or ends Failed or Stopped fails the task with its FailureReason and label counters.
    Both failures raise :class:`AirflowFailException`: a retry would find the same job under the same name.

    :param config: the CreateLabelingJob request (templated). Integer fields rendered as strings are cast.
    :param wait_for_completion: wait until the job is Completed, Failed or Stopped.
    :param check_interval: seconds between two status checks while waiting.
    :param max_attempts: the most status checks before the task gives up waiting (the job keeps running;
        a retry attaches to it again).
    :param deferrable: wait in the triggerer instead of the worker. Only used with ``wait_for_completion``.
    :param aws_conn_id: the Airflow connection for AWS credentials.
    :param region_name: the AWS region; if not given, boto3's default.
    :param verify: whether to verify SSL certificates.
    :param botocore_config: configuration dictionary for the botocore client.
    :return: the job's ``LabelingJobName``, ``LabelingJobArn``, ``LabelingJobStatus``,
        ``OutputDatasetS3Uri`` (the output manifest; None until the job completed) and ``LabelCounters``.
    """

    aws_hook_class = GroundTruthLabelingHook

    def __init__(
        self,
        *,
        config: dict[str, Any],
        wait_for_completion: bool = True,
        check_interval: int = 60,
        max_attempts: int = 4320,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ):
        super().__init__(config=config, **kwargs)
        self.wait_for_completion = wait_for_completion
        self.check_interval = check_interval
        self.max_attempts = max_attempts
        self.deferrable = deferrable

    def _create_integer_fields(self) -> None:
        self.integer_fields = [
            ["HumanTaskConfig", "NumberOfHumanWorkersPerDataObject"],
            ["HumanTaskConfig", "TaskTimeLimitInSeconds"],
            ["HumanTaskConfig", "TaskAvailabilityLifetimeInSeconds"],
            ["HumanTaskConfig", "MaxConcurrentTaskCount"],
            ["HumanTaskConfig", "PublicWorkforceTaskPrice", "AmountInUsd", "Dollars"],
            ["HumanTaskConfig", "PublicWorkforceTaskPrice", "AmountInUsd", "Cents"],
            ["HumanTaskConfig", "PublicWorkforceTaskPrice", "AmountInUsd", "TenthFractionsOfACent"],
            ["StoppingConditions", "MaxHumanLabeledObjectCount"],
            ["StoppingConditions", "MaxPercentageOfInputDatasetLabeled"],
        ]

    @property
    def job_name(self) -> str:
        name = self.config.get("LabelingJobName")
        if not name:
            raise AirflowFailException(
                f"The config of task {self.task_id} has no LabelingJobName; the operator finds or creates "
                "the labeling job by that name."
            )
        return name

    def execute(self, context: Context) -> dict[str, Any]:
        self.preprocess_config()
        description = self.hook.find_labeling_job(self.job_name)
        if description is None:
            job_arn = self.hook.create_labeling_job(self.config)
            self.log.info("Created labeling job %s (%s).", self.job_name, job_arn)
            description = self.hook.describe_labeling_job(self.job_name)
        else:
            self._check_same_request(description)
            self.log.info(
                "Labeling job %s already exists with this request and is %s; attaching to it.",
                self.job_name,
                description["LabelingJobStatus"],
            )

        if description["LabelingJobStatus"] not in self.hook.labeling_job_non_terminal_states:
            return self._result_of_finished_job(description)
        if not self.wait_for_completion:
            return labeling_job_summary(description)
        if self.deferrable:
            self.defer(
                trigger=SageMakerLabelingJobTrigger(
                    job_name=self.job_name,
                    waiter_delay=self.check_interval,
                    waiter_max_attempts=self.max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
            )
        finished = self.hook.wait_for_labeling_job(self.job_name, self.check_interval, self.max_attempts)
        return self._result_of_finished_job(finished)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        event = validate_execute_complete_event(event)
        if event["status"] == "success":
            return self._result_of_finished_job(self.hook.describe_labeling_job(event["job_name"]))
        if event.get("job_status") in self.hook.labeling_job_failed_states:
            raise AirflowFailException(event["message"])
        raise AirflowException(event["message"])

    def on_kill(self) -> None:
        """Stop the labeling job if it is still running, so it does not keep paying workers."""
        description = self.hook.find_labeling_job(self.job_name)
        if (
            description is None
            or description["LabelingJobStatus"] not in self.hook.labeling_job_running_states
        ):
            return
        self.log.info("Stopping labeling job %s (%s).", self.job_name, description["LabelingJobStatus"])
        self.hook.stop_labeling_job(self.job_name)

    def _check_same_request(self, description: Mapping[str, Any]) -> None:
        differences = request_differences(self.config, description, self.hook.echoed_request_fields())
        if differences:
            raise AirflowFailException(
                f"A labeling job named {self.job_name} already exists with a different request, so this "
                f"task cannot attach to it. Differing fields: {'; '.join(differences)}. "
                "Restore the original request or choose a new LabelingJobName."
            )

    def _result_of_finished_job(self, description: Mapping[str, Any]) -> dict[str, Any]:
        if description["LabelingJobStatus"] in self.hook.labeling_job_failed_states:
            raise AirflowFailException(labeling_job_failure_message(description))
        self.log.info(
            "Labeling job %s completed; label counters: %s.",
            self.job_name,
            format_label_counters(description["LabelCounters"]),
        )
        return labeling_job_summary(description)
