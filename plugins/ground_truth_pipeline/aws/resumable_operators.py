"""The provider's SageMaker training, model, transform and endpoint operators, made safe to retry and clear.

The project rule: a retried or cleared Airflow task must not create a second AWS job or fail on its own
leftovers. Resource names are derived from the DAG run (``experiment.resource_name``), so every try of a
task asks for the same name. The stock operators then either fail on the name clash or create a second,
timestamped job; the model and endpoint operators fail because the model or endpoint config exists.

Each operator here looks first for what an earlier try left behind, then goes through the stock operator's
own code (``super().execute``) for whatever still has to be created, so XComs and waiting behaviour stay
those of the stock operators.

Training and transform jobs. SageMaker keeps a job name taken for good, even after the job failed, so a
job cannot be re-run under its name. The operator looks the names ``<name>``, ``<name>-2``, ``<name>-3``,
... up in that order: a job that is in progress (or stopping) is attached to and waited for, a completed
job's result is returned as is, a failed or stopped job has spent its name and the next name is looked
up, and the first free name gets the new job. A retry after a failed job therefore runs as ``<name>-2``,
and a later retry finds that job instead of starting a third one. ``resource_name`` leaves room for the
suffix; downstream tasks must take the job name from the XCom, not rebuild it.

Models. A model that exists with the same containers (image and model artifact) is reused; one with other
containers (the training task was cleared and wrote a new artifact) is deleted and created again.

Endpoints. An endpoint config with the same production variants is reused. One that differs is deleted
and created again when the run's endpoint does not use it; when the endpoint does use it, the new config
is created under the next free name (``<config>-2``, ...) and the endpoint is updated to it, as the stock
``operation="update"`` does. An endpoint in service on the wanted config is returned as it is, one being
created or updated is waited for, and one that failed, or that was deployed before one of its models was
created again, is deleted and created again.
"""

from __future__ import annotations

import datetime
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.links.sagemaker import SageMakerTransformJobLink
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerBaseOperator,
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
    serialize,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import ClientError

from ground_truth_pipeline.experiment import MAX_RESOURCE_NAME_LENGTH, RETRY_SUFFIX_ROOM

if TYPE_CHECKING:
    from airflow.sdk import Context

# DescribeX answers ValidationException for a missing resource on AWS (what the stock operators check);
# ResourceNotFound is what SageMaker-compatible services may answer instead.
NOT_FOUND_ERROR_CODES = frozenset({"ValidationException", "ResourceNotFound"})
SPENT_JOB_STATES = frozenset({"Failed", "Stopped"})
FAILED_ENDPOINT_STATES = frozenset({"Failed", "UpdateRollbackFailed"})
SETTLING_ENDPOINT_STATES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})


def candidate_names(base_name: str) -> Iterator[str]:
    """``base_name``, then ``base_name-2``, ``-3``, ... while the suffix fits the room names leave for it."""
    yield base_name
    for attempt in range(2, 10 ** (RETRY_SUFFIX_ROOM - 1)):
        name = f"{base_name}-{attempt}"
        if len(name) > MAX_RESOURCE_NAME_LENGTH:
            return
        yield name


def describe_or_none(describe: Callable[[str], dict], name: str) -> dict | None:
    """The description of the resource ``name``, or None when it does not exist."""
    try:
        return describe(name)
    except ClientError as error:
        if error.response["Error"]["Code"] in NOT_FOUND_ERROR_CODES:
            return None
        raise


def defer_until_job_ends(
    operator: ResumableTrainingOperator | ResumableTransformOperator, name: str, job_type: str
) -> None:
    """Hand the wait for an existing job to the triggerer, as the stock operators do for a new one."""
    operator.defer(
        timeout=(
            datetime.timedelta(seconds=operator.max_ingestion_time)
            if operator.max_ingestion_time
            else operator.execution_timeout
        ),
        trigger=SageMakerTrigger(
            job_name=name,
            job_type=job_type,
            waiter_delay=operator.check_interval,
            waiter_max_attempts=operator.max_attempts,
            aws_conn_id=operator.aws_conn_id,
            region_name=operator.region_name,
            verify=operator.verify,
            botocore_config=operator.botocore_config,
        ),
        method_name="execute_complete",
    )


def find_job_to_resume(
    operator: SageMakerBaseOperator, base_name: str, describe: Callable[[str], dict], status_key: str
) -> tuple[str, dict | None]:
    """The job name a try should use, with the existing job's description or None if it must be created.

    The first job on the ``candidate_names`` path that is not failed or stopped is resumed; the first free
    name is created.
    """
    for name in candidate_names(base_name):
        description = describe_or_none(describe, name)
        if description is None:
            return name, None
        status = description[status_key]
        if status not in SPENT_JOB_STATES:
            operator.log.info("Found job %s of an earlier try (%s): resuming it.", name, status)
            return name, description
        operator.log.warning(
            "Job %s of an earlier try ended %s (%s). SageMaker never reuses a job name, so this try "
            "looks up the next name.",
            name,
            status,
            description.get("FailureReason", "no reason given"),
        )
    raise AirflowException(
        f"Every name from {base_name} to {name} is taken by a failed or stopped job; "
        "look at why they failed before clearing the task again."
    )


def _container_identity(model: dict) -> list[tuple[str | None, str | None]]:
    containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else model.get("Containers", [])
    return [(container.get("Image"), container.get("ModelDataUrl")) for container in containers]


def reuse_or_remove_model(operator: SageMakerBaseOperator, model_config: dict) -> dict | None:
    """The description of an existing model with ``model_config``'s containers, else None.

    An existing model with other containers (image or artifact) is deleted, so the caller can create it.
    """
    name = model_config["ModelName"]
    existing = describe_or_none(operator.hook.describe_model, name)
    if existing is None:
        return None
    if _container_identity(existing) == _container_identity(model_config):
        operator.log.info("Model %s of an earlier try has the same containers: reusing it.", name)
        return existing
    operator.log.warning(
        "Model %s of an earlier try has containers %s, this try wants %s: deleting it to create it again.",
        name,
        _container_identity(existing),
        _container_identity(model_config),
    )
    operator.hook.delete_model(name)
    return None


def _variants_match(wanted: list[dict], existing: list[dict]) -> bool:
    """Whether every field the wanted production variants set has the same value in the existing ones."""
    return len(wanted) == len(existing) and all(
        all(have.get(key) == value for key, value in want.items())
        for want, have in zip(wanted, existing, strict=True)
    )


class ResumableTrainingOperator(SageMakerTrainingOperator):
    """:class:`SageMakerTrainingOperator` that resumes the training job of an earlier try.

    See the module docstring for the naming policy. ``check_if_job_exists`` and ``action_if_job_exists``
    are not accepted: the operator does its own lookup and never renames with a timestamp.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check_if_job_exists=False, **kwargs)

    def execute(self, context: Context) -> dict:
        name, existing = find_job_to_resume(
            self, self.config["TrainingJobName"], self.hook.describe_training_job, "TrainingJobStatus"
        )
        self.config["TrainingJobName"] = name
        if existing is None:
            return super().execute(context)
        if existing["TrainingJobStatus"] in self.hook.non_terminal_states and self.wait_for_completion:
            self._wait_for_job(name)
        return self.serialize_result(name)

    def _wait_for_job(self, name: str) -> None:
        if self.deferrable:
            defer_until_job_ends(self, name, "Training")
        if self.print_log:
            self.hook.check_training_status_with_log(
                name,
                self.hook.non_terminal_states,
                self.hook.training_failed_states,
                wait_for_completion=True,
                check_interval=self.check_interval,
                max_ingestion_time=self.max_ingestion_time,
            )
            return
        description = self.hook.check_status(
            name,
            "TrainingJobStatus",
            self.hook.describe_training_job,
            self.check_interval,
            self.max_ingestion_time,
        )
        # check_status only treats "Failed" as a failure; a stopped training job has no usable model either.
        if description["TrainingJobStatus"] in self.hook.training_failed_states:
            raise AirflowException(f"Training job {name} ended {description['TrainingJobStatus']}")


class ResumableTransformOperator(SageMakerTransformOperator):
    """:class:`SageMakerTransformOperator` that resumes the transform job of an earlier try.

    See the module docstring for the naming policy. A ``Model`` part of the config is reused or replaced
    like :class:`ResumableModelOperator` does, instead of being renamed with a timestamp.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check_if_job_exists=False, check_if_model_exists=False, **kwargs)

    def execute(self, context: Context) -> dict:
        transform_config = self.config.get("Transform", self.config)
        name, existing = find_job_to_resume(
            self, transform_config["TransformJobName"], self.hook.describe_transform_job, "TransformJobStatus"
        )
        transform_config["TransformJobName"] = name
        if existing is None:
            model_config = self.config.get("Model")
            if model_config and reuse_or_remove_model(self, model_config) is not None:
                self.config = {"Transform": transform_config}
            return super().execute(context)
        self._persist_job_link(context, name)
        if existing["TransformJobStatus"] in self.hook.non_terminal_states and self.wait_for_completion:
            self._wait_for_job(name)
        return self.serialize_result(name)

    def _persist_job_link(self, context: Context, name: str) -> None:
        SageMakerTransformJobLink.persist(
            context=context,
            operator=self,
            region_name=self.hook.conn_region_name,
            aws_partition=self.hook.conn_partition,
            job_name=urllib.parse.quote(name, safe=""),
        )

    def _wait_for_job(self, name: str) -> None:
        if self.deferrable:
            defer_until_job_ends(self, name, "Transform")
        description = self.hook.check_status(
            name,
            "TransformJobStatus",
            self.hook.describe_transform_job,
            self.check_interval,
            self.max_ingestion_time,
        )
        # check_status only treats "Failed" as a failure; a stopped transform job has partial output.
        if description["TransformJobStatus"] in SPENT_JOB_STATES:
            raise AirflowException(f"Transform job {name} ended {description['TransformJobStatus']}")


class ResumableModelOperator(SageMakerModelOperator):
    """:class:`SageMakerModelOperator` that reuses the model of an earlier try when its containers match."""

    def execute(self, context: Context) -> dict:
        existing = reuse_or_remove_model(self, self.config)
        if existing is not None:
            return {"Model": serialize(existing)}
        return super().execute(context)


class ResumableEndpointOperator(SageMakerEndpointOperator):
    """:class:`SageMakerEndpointOperator` for ``operation="create"`` that resumes an earlier try's endpoint.

    The config must be ``{"EndpointConfig": ..., "Endpoint": ...}`` with the endpoint naming that config;
    create the model with :class:`ResumableModelOperator`. See the module docstring for the policy. The
    XCom's ``EndpointConfig`` is the config the endpoint was deployed with, which may be ``<config>-2``.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.operation != "create":
            raise ValueError(
                f"{type(self).__name__} only creates endpoints (operation='create'), got {self.operation!r}"
            )

    def execute(self, context: Context) -> dict:
        endpoint_config, endpoint = self._endpoint_parts()
        self._create_integer_fields()
        self.parse_config_integers()
        endpoint_name = endpoint["EndpointName"]

        current = self._usable_endpoint(endpoint_name)
        config_name, create_config = self._endpoint_config_to_deploy(
            endpoint_config, in_use=current["EndpointConfigName"] if current else None
        )
        endpoint["EndpointConfigName"] = config_name
        endpoint_config["EndpointConfigName"] = config_name
        self.config = {"Endpoint": endpoint}
        if create_config:
            self.config["EndpointConfig"] = endpoint_config

        if current is None:
            return super().execute(context)
        if current["EndpointConfigName"] == config_name:
            if current["EndpointStatus"] in SETTLING_ENDPOINT_STATES:
                self._wait_for_endpoint(endpoint_name)
            return {
                "EndpointConfig": serialize(self.hook.describe_endpoint_config(config_name)),
                "Endpoint": serialize(self.hook.describe_endpoint(endpoint_name)),
            }
        if current["EndpointStatus"] in SETTLING_ENDPOINT_STATES:
            self.log.info(
                "Endpoint %s is %s: waiting before updating it.", endpoint_name, current["EndpointStatus"]
            )
            self.hook.get_waiter("endpoint_in_service").wait(
                EndpointName=endpoint_name,
                WaiterConfig={"Delay": self.check_interval, "MaxAttempts": self.max_ingestion_time},
            )
        self.log.info(
            "Endpoint %s runs on %s: updating it to %s.",
            endpoint_name,
            current["EndpointConfigName"],
            config_name,
        )
        if endpoint.pop("Tags", None):
            self.log.warning("UpdateEndpoint takes no tags: endpoint %s keeps its tags.", endpoint_name)
        self.operation = "update"
        return super().execute(context)

    def _endpoint_parts(self) -> tuple[dict, dict]:
        if set(self.config) != {"EndpointConfig", "Endpoint"}:
            raise ValueError(
                f"{self.task_id}: config must have exactly the parts EndpointConfig and Endpoint, "
                f"got {sorted(self.config)}"
            )
        endpoint_config, endpoint = self.config["EndpointConfig"], self.config["Endpoint"]
        if endpoint.get("EndpointConfigName") != endpoint_config["EndpointConfigName"]:
            raise ValueError(
                f"{self.task_id}: Endpoint.EndpointConfigName {endpoint.get('EndpointConfigName')!r} must "
                f"name the EndpointConfig part {endpoint_config['EndpointConfigName']!r}"
            )
        return endpoint_config, endpoint

    def _usable_endpoint(self, endpoint_name: str) -> dict | None:
        """The endpoint of an earlier try that can be kept, after deleting one that cannot."""
        current = describe_or_none(self.hook.describe_endpoint, endpoint_name)
        if current is None:
            return None
        status = current["EndpointStatus"]
        if status == "Deleting":
            self.log.info(
                "Endpoint %s of an earlier try is being deleted: waiting for it to go.", endpoint_name
            )
        elif status in FAILED_ENDPOINT_STATES:
            self.log.warning(
                "Endpoint %s of an earlier try is %s (%s): deleting it to create it again.",
                endpoint_name,
                status,
                current.get("FailureReason", "no reason given"),
            )
            self.hook.conn.delete_endpoint(EndpointName=endpoint_name)
        elif status not in SETTLING_ENDPOINT_STATES and self._serves_replaced_model(current):
            self.log.warning(
                "Endpoint %s was deployed before a model of its config %s was created again, so it still "
                "serves the old containers: deleting it to create it again.",
                endpoint_name,
                current["EndpointConfigName"],
            )
            self.hook.conn.delete_endpoint(EndpointName=endpoint_name)
        else:
            return current
        self._wait_until_endpoint_gone(endpoint_name)
        return None

    def _serves_replaced_model(self, endpoint: dict) -> bool:
        config = describe_or_none(self.hook.describe_endpoint_config, endpoint["EndpointConfigName"])
        if config is None:
            return True
        for variant in config["ProductionVariants"]:
            model = describe_or_none(self.hook.describe_model, variant["ModelName"])
            if model is None or model["CreationTime"] > endpoint["LastModifiedTime"]:
                return True
        return False

    def _wait_until_endpoint_gone(self, endpoint_name: str) -> None:
        # Not the boto3 "endpoint_deleted" waiter: it fails on an endpoint that still reads "Failed"
        # right after DeleteEndpoint was accepted.
        deadline = time.monotonic() + self.max_ingestion_time
        while describe_or_none(self.hook.describe_endpoint, endpoint_name) is not None:
            if time.monotonic() > deadline:
                raise AirflowException(
                    f"Endpoint {endpoint_name} still exists {self.max_ingestion_time} s after deleting it"
                )
            time.sleep(self.check_interval)

    def _endpoint_config_to_deploy(self, wanted: dict, in_use: str | None) -> tuple[str, bool]:
        """The endpoint config name to deploy, and whether that config must be created first.

        An existing config with the wanted production variants is reused, the one in use preferred.
        Otherwise the first config the endpoint does not use is deleted and its name reused, or the first
        free name on the ``candidate_names`` path is taken.
        """
        existing: dict[str, dict] = {}
        free_name = None
        for name in candidate_names(wanted["EndpointConfigName"]):
            description = describe_or_none(self.hook.describe_endpoint_config, name)
            if description is None:
                free_name = name
                break
            existing[name] = description
        matching = [
            name
            for name, description in existing.items()
            if _variants_match(wanted["ProductionVariants"], description["ProductionVariants"])
        ]
        if matching:
            name = in_use if in_use in matching else matching[0]
            self.log.info("Endpoint config %s of an earlier try has the same variants: reusing it.", name)
            return name, False
        for name in existing:
            if name != in_use:
                self.log.warning(
                    "Endpoint config %s of an earlier try has other production variants and no endpoint "
                    "of this run uses it: deleting it to create it again.",
                    name,
                )
                self.hook.conn.delete_endpoint_config(EndpointConfigName=name)
                return name, True
        if free_name is None:
            raise AirflowException(
                f"No free endpoint config name left after {wanted['EndpointConfigName']}: every one is taken"
            )
        if existing:
            self.log.warning(
                "Endpoint config %s has other production variants and the endpoint uses it: creating %s.",
                in_use,
                free_name,
            )
        return free_name, True

    def _wait_for_endpoint(self, endpoint_name: str) -> None:
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=endpoint_name,
                    job_type="endpoint",
                    waiter_delay=self.check_interval,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.max_ingestion_time),
            )
        elif self.wait_for_completion:
            self.hook.get_waiter("endpoint_in_service").wait(
                EndpointName=endpoint_name,
                WaiterConfig={"Delay": self.check_interval, "MaxAttempts": self.max_ingestion_time},
            )
