"""The few things every step reads from an Airflow task context: params, DAG id, run id, connection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients

AWS_CONN_ID = "aws_default"
ROLE_ARN_VARIABLE = "ground_truth_role_arn"


@dataclass(frozen=True)
class RunSettings:
    """A task's view of its run, built from the Airflow context (or by hand in tests)."""

    params: Mapping[str, Any]
    dag_id: str
    run_id: str
    clients: AwsClients

    @classmethod
    def from_context(cls, context: Mapping[str, Any], clients: AwsClients | None = None) -> RunSettings:
        return cls(
            params=context["params"],
            dag_id=context["dag"].dag_id,
            run_id=context["run_id"],
            clients=clients or AwsClients(AWS_CONN_ID),
        )

    def role_arn(self) -> str:
        """The role from the params, else the Airflow Variable; a clear error when neither is set."""
        role = str(self.params.get("role_arn") or "").strip()
        if not role:
            from airflow.sdk import Variable

            role = str(Variable.get(ROLE_ARN_VARIABLE, default="") or "").strip()
        if not role.startswith("arn:aws"):
            raise ValueError(
                f"No SageMaker execution role: set the param 'role_arn' or the Airflow Variable "
                f"{ROLE_ARN_VARIABLE!r} to an IAM role ARN (got {role!r})"
            )
        return role
