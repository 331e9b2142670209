"""The provider's SageMaker training, model, transform and endpoint operators, made safe to retry and clear.

The project rule: a retried or cleared Airflow task must not create a second AWS job or fail on its own
leftovers. Resource names are derived from the DAG run (``experiment.resource_name``), so every try of a
task asks for the same name. The stock operators then either fail on the name clash or create a second,
timestamped job; the model and endpoint operators fail because the model or endpoint config exists.

Each operator here looks first, through :class:`ResumableSageMakerHook` (its ``aws_hook_class``), for what
an earlier try left behind. The job and model operators then go through the stock operator's own code
(``super().execute``) for whatever still has to be created, so XComs and waiting behaviour stay those of
the stock operators; the endpoint operator creates or updates through the hook and waits as the stock one
does.

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

Waits. ``check_interval`` and ``max_ingestion_time`` are seconds, as in the stock operators; ``max_attempts``
(training and transform) is the number of checks the trigger makes. The endpoint operator, which has no
``max_attempts``, checks as often as ``max_ingestion_time`` allows at ``check_interval``.
"""

from __future__ import annotations

import datetime
import urllib.parse
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

from ground_truth_pipeline.aws.resumable_sagemaker_hook import ResumableSageMakerHook, attempts_within

if TYPE_CHECKING:
    from airflow.sdk import Context


def defer_until_done(
    operator: ResumableTrainingOperator | ResumableTransformOperator | ResumableEndpointOperator,
    name: str,
    job_type: str,
    max_attempts: int,
) -> None:
    """Hand the wait for a job or endpoint to the triggerer, as the stock operators do; it resumes in
    their ``execute_complete``. ``max_attempts``: the most checks, ``check_interval`` seconds apart."""
    operator.defer(
        trigger=SageMakerTrigger(
            job_name=name,
            job_type=job_type,
            waiter_delay=operator.check_interval,
            waiter_max_attempts=max_attempts,
            aws_conn_id=operator.aws_conn_id,
            region_name=operator.region_name,
            verify=operator.verify,
            botocore_config=operator.botocore_config,
        ),
        method_name="execute_complete",
        timeout=(
            datetime.timedelta(seconds=operator.max_ingestion_time)
            if operator.max_ingestion_time
            else operator.execution_timeout
        ),
    )


def _container_identity(model: dict) -> list[tuple[str | None, str | None]]:
    containers = [model["PrimaryContainer"]] if model.get("PrimaryContainer") else model.get("Containers", [])
    return [(container.get("Image"), container.get("ModelDataUrl")) for container in containers]


def reuse_or_remove_model(operator: SageMakerBaseOperator, model_config: dict) -> dict | None:
    """The description of an existing model with ``model_config``'s containers, else None.

    An existing model with other containers (image or artifact) is deleted, so the caller can create it.
    """
    hook: ResumableSageMakerHook = operator.hook
    name = model_config["ModelName"]
    existing = hook.find_model(name)
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
    hook.delete_model(name)
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
    are not accepted: the operator does its own lookup and never renames with a timestamp. Like the stock
    operator's lookup, it writes the name it settled on into the config's ``TrainingJobName``.
    """

    aws_hook_class = ResumableSageMakerHook

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check_if_job_exists=False, **kwargs)

    def execute(self, context: Context) -> dict:
        name, existing = self.hook.find_training_job_to_resume(self.config["TrainingJobName"])
        self.config["TrainingJobName"] = name
        if existing is None:
            return super().execute(context)
        if existing["TrainingJobStatus"] in self.hook.non_terminal_states and self.wait_for_completion:
            self._wait_for_job(name)
        return self.serialize_result(name)

    def _wait_for_job(self, name: str) -> None:
        if self.deferrable:
            defer_until_done(self, name, "Training", self.max_attempts)
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

    aws_hook_class = ResumableSageMakerHook

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(check_if_job_exists=False, check_if_model_exists=False, **kwargs)

    def execute(self, context: Context) -> dict:
        transform_config = self.config.get("Transform", self.config)
        name, existing = self.hook.find_transform_job_to_resume(transform_config["TransformJobName"])
        transform_config["TransformJobName"] = name
        if existing is None:
            model_config = self.config.get("Model")
            if model_config and reuse_or_remove_model(self, model_config) is not None:
                # The stock operator creates the config's Model part unconditionally.
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
            defer_until_done(self, name, "Transform", self.max_attempts)
        description = self.hook.check_status(
            name,
            "TransformJobStatus",
            self.hook.describe_transform_job,
            self.check_interval,
            self.max_ingestion_time,
        )
        # check_status only treats "Failed" as a failure; a stopped transform job has partial output.
        if description["TransformJobStatus"] in self.hook.spent_job_states:
            raise AirflowException(f"Transform job {name} ended {description['TransformJobStatus']}")


class ResumableModelOperator(SageMakerModelOperator):
    """:class:`SageMakerModelOperator` that reuses the model of an earlier try when its containers match."""

    aws_hook_class = ResumableSageMakerHook

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

    aws_hook_class = ResumableSageMakerHook

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.operation != "create":
            raise ValueError(
                f"{type(self).__name__} only creates endpoints (operation='create'), got {self.operation!r}"
            )

    def execute(self, context: Context) -> dict:
        wanted_config, endpoint = self._endpoint_parts()
        self.preprocess_config()  # parses the variants' integers in place
        name = endpoint["EndpointName"]

        current = self._endpoint_to_keep(name)
        config_name, create_config = self._endpoint_config_to_deploy(
            wanted_config, in_use=current["EndpointConfigName"] if current else None
        )
        if create_config:
            self.log.info("Creating endpoint config %s.", config_name)
            self.hook.create_endpoint_config({**wanted_config, "EndpointConfigName": config_name})
        request = {**endpoint, "EndpointConfigName": config_name}
        if current is None:
            self.log.info("Creating SageMaker endpoint %s.", name)
            self.hook.create_endpoint(request, wait_for_completion=False)
        elif current["EndpointConfigName"] != config_name:
            self._update_endpoint(current, request)
        elif current["EndpointStatus"] not in self.hook.endpoint_settling_states:
            return self._described(name, config_name)
        self._wait_for_endpoint(name)
        return self._described(name, config_name)

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

    def _described(self, name: str, config_name: str) -> dict:
        return {
            "EndpointConfig": serialize(self.hook.describe_endpoint_config(config_name)),
            "Endpoint": serialize(self.hook.describe_endpoint(name)),
        }

    def _endpoint_to_keep(self, name: str) -> dict | None:
        """The endpoint of an earlier try that can be kept, after deleting one that cannot."""
        current = self.hook.find_endpoint(name)
        if current is None:
            return None
        status = current["EndpointStatus"]
        if status in self.hook.endpoint_deleting_states:
            self.log.info("Endpoint %s of an earlier try is being deleted: waiting for it to go.", name)
        elif status in self.hook.endpoint_failed_states:
            self.log.warning(
                "Endpoint %s of an earlier try is %s (%s): deleting it to create it again.",
                name,
                status,
                current.get("FailureReason", "no reason given"),
            )
        elif status not in self.hook.endpoint_settling_states and self._serves_replaced_model(current):
            self.log.warning(
                "Endpoint %s was deployed before a model of its config %s was created again, so it still "
                "serves the old containers: deleting it to create it again.",
                name,
                current["EndpointConfigName"],
            )
        else:
            return current
        self.hook.delete_endpoint_and_wait(name, self.check_interval, self.max_ingestion_time)
        return None

    def _serves_replaced_model(self, endpoint: dict) -> bool:
        config = self.hook.find_endpoint_config(endpoint["EndpointConfigName"])
        if config is None:
            return True
        for variant in config["ProductionVariants"]:
            model = self.hook.find_model(variant["ModelName"])
            if model is None or model["CreationTime"] > endpoint["LastModifiedTime"]:
                return True
        return False

    def _endpoint_config_to_deploy(self, wanted: dict, in_use: str | None) -> tuple[str, bool]:
        """The endpoint config name to deploy, and whether that config must be created first.

        An existing config with the wanted production variants is reused, the one in use preferred.
        Otherwise the first config the endpoint does not use is deleted and its name reused, or the first
        free name on the ``candidate_names`` path is taken.
        """
        existing, free_name = self.hook.find_endpoint_configs(wanted["EndpointConfigName"])
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
                self.hook.delete_endpoint_config(name)
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

    def _update_endpoint(self, current: dict, request: dict) -> None:
        """Move the endpoint to the config in ``request``, once it has settled (SageMaker refuses before)."""
        name = request["EndpointName"]
        if current["EndpointStatus"] in self.hook.endpoint_settling_states:
            self.log.info("Endpoint %s is %s: waiting before updating it.", name, current["EndpointStatus"])
            self.hook.wait_for_endpoint_in_service(name, self.check_interval, self.max_ingestion_time)
        self.log.info(
            "Endpoint %s runs on %s: updating it to %s.",
            name,
            current["EndpointConfigName"],
            request["EndpointConfigName"],
        )
        if request.pop("Tags", None):
            self.log.warning("UpdateEndpoint takes no tags: endpoint %s keeps its tags.", name)
        self.hook.update_endpoint(request, wait_for_completion=False)

    def _wait_for_endpoint(self, name: str) -> None:
        if self.deferrable:
            defer_until_done(
                self, name, "endpoint", attempts_within(self.max_ingestion_time, self.check_interval)
            )
        elif self.wait_for_completion:
            self.hook.wait_for_endpoint_in_service(name, self.check_interval, self.max_ingestion_time)
