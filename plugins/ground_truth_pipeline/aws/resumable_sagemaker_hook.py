"""The provider's SageMaker hook, with what a retried or cleared task needs to find an earlier try's work.

Resource names are derived from the DAG run (``experiment.resource_name``), so every try of a task asks for
the same name; a job that failed has spent its name for good, so a later try takes the next one on the
``candidate_names`` path (``<name>``, ``<name>-2``, ...). This hook describes a resource or answers None
when it does not exist, walks that name path, and deletes an endpoint and waits until it is gone. It makes
every SageMaker call of the resumable operators (``resumable_operators``) and of the endpoint teardown
(``steps.deploy_step``), and holds the endpoint states they act on.

Waits are given in seconds, as the provider's hook takes them (``check_interval``, ``max_ingestion_time``);
where a boto3 waiter or a trigger wants a number of checks instead, ``attempts_within`` converts.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.utils.waiter_with_logging import wait
from airflow.sdk.exceptions import AirflowException
from botocore.exceptions import ClientError

from ground_truth_pipeline.experiment import MAX_RESOURCE_NAME_LENGTH, RETRY_SUFFIX_ROOM


def attempts_within(seconds: float, check_interval: float) -> int:
    """How many checks ``check_interval`` seconds apart fit in ``seconds``: a waiter's or trigger's attempts.

    An interval under a second counts as one second, so a zero interval (tests) still gives a finite count.
    """
    return max(1, math.ceil(seconds / max(check_interval, 1)))


class ResumableSageMakerHook(SageMakerHook):
    """
    :class:`SageMakerHook` that finds what an earlier try of a task left behind, and deletes endpoints.

    Job states are the provider's (``non_terminal_states``, ``failed_states``) and ``spent_job_states``.
    Endpoint states place each of SageMaker's once: settling, deleting, or ended (in service, out of
    service or failed). The settling ones and Deleting are the provider's ``endpoint_non_terminal_states``.
    """

    # DescribeX answers ValidationException for a missing resource on AWS (what the provider's operators
    # check); ResourceNotFound is what SageMaker-compatible services may answer instead.
    not_found_error_codes = frozenset({"ValidationException", "ResourceNotFound"})
    # A training or transform job that ended so has spent its name: SageMaker never reuses a job name.
    spent_job_states = frozenset({*SageMakerHook.failed_states, "Stopped"})

    endpoint_deleting_states = frozenset({"Deleting"})
    # A settling endpoint ends in service or failed; SageMaker refuses to update it until then.
    endpoint_settling_states = (
        frozenset(SageMakerHook.endpoint_non_terminal_states) - endpoint_deleting_states
    )
    endpoint_failed_states = frozenset({"Failed", "UpdateRollbackFailed"})
    endpoint_ended_states = frozenset({"InService", "OutOfService", *endpoint_failed_states})

    # Names.

    @staticmethod
    def candidate_names(base_name: str) -> Iterator[str]:
        """``base_name``, then ``base_name-2``, ``-3``, ... while the suffix fits the room left for it."""
        yield base_name
        for attempt in range(2, 10 ** (RETRY_SUFFIX_ROOM - 1)):
            name = f"{base_name}-{attempt}"
            if len(name) > MAX_RESOURCE_NAME_LENGTH:
                return
            yield name

    # Describe, or None when the resource does not exist.

    def _describe_or_none(
        self, describe: Callable[[str], dict[str, Any]], name: str
    ) -> dict[str, Any] | None:
        try:
            return describe(name)
        except ClientError as error:
            if error.response["Error"]["Code"] in self.not_found_error_codes:
                return None
            raise

    def find_training_job(self, name: str) -> dict[str, Any] | None:
        return self._describe_or_none(self.describe_training_job, name)

    def find_transform_job(self, name: str) -> dict[str, Any] | None:
        return self._describe_or_none(self.describe_transform_job, name)

    def find_model(self, name: str) -> dict[str, Any] | None:
        return self._describe_or_none(self.describe_model, name)

    def find_endpoint_config(self, name: str) -> dict[str, Any] | None:
        return self._describe_or_none(self.describe_endpoint_config, name)

    def find_endpoint(self, name: str) -> dict[str, Any] | None:
        return self._describe_or_none(self.describe_endpoint, name)

    # The name path.

    def find_training_job_to_resume(self, base_name: str) -> tuple[str, dict[str, Any] | None]:
        """The training job name a try should use, with that job's description, or None to create it."""
        return self._find_job_to_resume(base_name, self.find_training_job, "TrainingJobStatus")

    def find_transform_job_to_resume(self, base_name: str) -> tuple[str, dict[str, Any] | None]:
        """The transform job name a try should use, with that job's description, or None to create it."""
        return self._find_job_to_resume(base_name, self.find_transform_job, "TransformJobStatus")

    def _find_job_to_resume(
        self, base_name: str, find: Callable[[str], dict[str, Any] | None], status_key: str
    ) -> tuple[str, dict[str, Any] | None]:
        """The first job on the ``candidate_names`` path that has not spent its name, else the first free
        name."""
        for name in self.candidate_names(base_name):
            description = find(name)
            if description is None:
                return name, None
            status = description[status_key]
            if status not in self.spent_job_states:
                self.log.info("Found job %s of an earlier try (%s): resuming it.", name, status)
                return name, description
            self.log.warning(
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

    def find_endpoint_configs(self, base_name: str) -> tuple[dict[str, dict[str, Any]], str | None]:
        """The endpoint configs on the ``candidate_names`` path up to the first free name, and that name.

        The configs are described by name, in path order; the free name is None when every name is taken.
        """
        existing: dict[str, dict[str, Any]] = {}
        for name in self.candidate_names(base_name):
            description = self.find_endpoint_config(name)
            if description is None:
                return existing, name
            existing[name] = description
        return existing, None

    # Deleting.

    def delete_endpoint_config(self, name: str) -> None:
        self.conn.delete_endpoint_config(EndpointConfigName=name)

    def delete_endpoint_configs(self, base_name: str) -> list[str]:
        """Delete every endpoint config on the ``candidate_names`` path; the names deleted, last name first.

        Last name first: a call that fails part-way leaves an unbroken ``<config>, <config>-2, ...`` for the
        next one to find.
        """
        existing, _ = self.find_endpoint_configs(base_name)
        deleted = []
        for name in reversed(existing):
            self.delete_endpoint_config(name)
            deleted.append(name)
        return deleted

    def delete_endpoint_and_wait(self, name: str, check_interval: float, max_ingestion_time: float) -> bool:
        """Delete the endpoint ``name`` and wait until it is gone; False when there was none.

        A settling endpoint (being created or updated) is let settle first, as SageMaker may refuse to
        delete it; one already Deleting is only waited for. Raises TimeoutError when the endpoint still
        exists ``max_ingestion_time`` seconds after the call began. Waits by describing the endpoint, not
        with boto3's ``endpoint_deleted`` waiter: that one fails on an endpoint that still reads Failed
        right after DeleteEndpoint was accepted.
        """
        deadline = time.monotonic() + max_ingestion_time

        def wait_a_check(still_waiting: str) -> None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Endpoint {name} {still_waiting} after {max_ingestion_time} s")
            time.sleep(check_interval)

        endpoint = self.find_endpoint(name)
        while endpoint is not None and endpoint["EndpointStatus"] in self.endpoint_settling_states:
            self.log.info("Endpoint %s is %s: waiting before deleting it.", name, endpoint["EndpointStatus"])
            wait_a_check(f"is still {endpoint['EndpointStatus']}")
            endpoint = self.find_endpoint(name)
        if endpoint is None:
            self.log.info("Endpoint %s does not exist: nothing to delete.", name)
            return False
        if endpoint["EndpointStatus"] not in self.endpoint_deleting_states:
            self.conn.delete_endpoint(EndpointName=name)
        while self.find_endpoint(name) is not None:
            wait_a_check("still exists")
        self.log.info("Deleted endpoint %s.", name)
        return True

    # Waiting.

    def wait_for_endpoint_in_service(self, name: str, check_interval: int, max_ingestion_time: float) -> None:
        """Wait until the endpoint is InService; raise when it fails or is still settling at the deadline."""
        wait(
            waiter=self.get_waiter("endpoint_in_service"),
            waiter_delay=check_interval,
            waiter_max_attempts=attempts_within(max_ingestion_time, check_interval),
            args={"EndpointName": name},
            failure_message=f"Endpoint {name} did not come into service",
            status_message=f"Endpoint {name} is not in service yet",
            status_args=["EndpointStatus", "FailureReason"],
        )
