"""What every step reads from its task context (params, DAG id, run id, connection), and its experiment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from ground_truth_pipeline.aws_clients import AwsClients
from ground_truth_pipeline.experiment import ExperimentLayout, ExperimentRun
from ground_truth_pipeline.object_store import S3ObjectStore

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


@dataclass(frozen=True)
class ExperimentStep:
    """A task of an experiment under way: its run settings and the experiment the first task created."""

    settings: RunSettings
    run: ExperimentRun

    @classmethod
    def from_context(
        cls, experiment: Mapping[str, str], context: Mapping[str, Any], clients: AwsClients | None = None
    ) -> ExperimentStep:
        return cls(RunSettings.from_context(context, clients), ExperimentRun.from_dict(dict(experiment)))

    @property
    def params(self) -> Mapping[str, Any]:
        return self.settings.params

    @property
    def clients(self) -> AwsClients:
        return self.settings.clients

    @property
    def layout(self) -> ExperimentLayout:
        return self.run.layout

    @cached_property
    def store(self) -> S3ObjectStore:
        """The experiment's bucket."""
        return S3ObjectStore(self.clients.s3, self.run.bucket)

    @cached_property
    def selection(self) -> dict[str, Any]:
        """What the prepare group chose (``selection.json``): the image ids to label and to hold out, their
        source URIs, and how they were found."""
        return json.loads(self.store.read_bytes(self.layout.selection_summary_key))

    def labeled_source_uris(self) -> list[str]:
        """The source URIs of the images the run sends to labeling, in manifest order."""
        return [self.selection["source_uris"][image_id] for image_id in self.selection["labeled_image_ids"]]

    def label_categories(self) -> list[str]:
        """The job's label categories in the category file's order, which the output's class ids index."""
        return [
            entry["label"]
            for entry in json.loads(self.store.read_bytes(self.layout.label_categories_key))["labels"]
        ]
