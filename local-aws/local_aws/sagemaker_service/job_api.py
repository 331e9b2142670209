"""What the operations of every kind of job share: ``JobApi``, the create, list and stop flow of a
kind's four operations; the request echoed by ``Describe<Kind>Job``; and one page of a ``List<Kind>Jobs``
answer, filtered, sorted and paged as SageMaker's list operations do.

Creating a job checks that its name is free in any case, then the request (the kind's own checks and its
engine's), and wakes the supervisor. Stopping a Stopping job does nothing; stopping an ended one is a
ValidationException naming its status.

Jobs sort by CreationTime unless asked otherwise, in the order each operation defaults to (Ascending for
training and labeling jobs, Descending for transform jobs); a page holds 10 jobs unless ``MaxResults``
says otherwise; ``NameContains`` matches regardless of case; times filter strictly (after, before).
``NextToken`` carries the sort key of the page's last job, so pages stay right while jobs are added.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.errors import ValidationError
from local_aws.sagemaker_service.job_runner import Engine, load_object
from local_aws.sagemaker_service.job_table import RUNNABLE_STATUSES, JobT, JobTable, ListedJob
from local_aws.sagemaker_service.protocol import Handler, epoch_seconds, service_model
from local_aws.sagemaker_service.tokens import decode_token, encode_token

DEFAULT_MAX_RESULTS = 10


Job = TypeVar("Job", bound=ListedJob)

_SORT_KEYS: dict[str, Callable[[ListedJob], list[Any]]] = {
    "Name": lambda job: [job.name.lower()],
    "CreationTime": lambda job: [job.creation_time, job.name.lower()],
    "Status": lambda job: [job.status, job.creation_time, job.name.lower()],
}
_TIME_FILTERS: dict[str, Callable[[ListedJob, float], bool]] = {
    "CreationTimeAfter": lambda job, time: job.creation_time > time,
    "CreationTimeBefore": lambda job, time: job.creation_time < time,
    "LastModifiedTimeAfter": lambda job, time: job.last_modified_time > time,
    "LastModifiedTimeBefore": lambda job, time: job.last_modified_time < time,
}


def echoed_request(operation: str, request: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a create request that SageMaker's ``operation`` answers with (Tags, for one, not)."""
    members = service_model("sagemaker").operation_model(operation).output_shape.members
    return {name: value for name, value in request.items() if name in members}


def list_page(
    jobs: Sequence[Job], params: dict[str, Any], *, default_order: str = "Ascending"
) -> tuple[list[Job], str | None]:
    """The page of ``jobs`` a list request asks for, and the token of the next page (None at the end)."""
    selected = list(jobs)
    for name, keep in _TIME_FILTERS.items():
        if name in params:
            limit = epoch_seconds(params[name])
            selected = [job for job in selected if keep(job, limit)]
    if "NameContains" in params:
        selected = [job for job in selected if params["NameContains"].lower() in job.name.lower()]
    if "StatusEquals" in params:
        selected = [job for job in selected if job.status == params["StatusEquals"]]
    sort_by = params.get("SortBy", "CreationTime")
    descending = params.get("SortOrder", default_order) == "Descending"
    sort_key = _SORT_KEYS[sort_by]
    selected.sort(key=sort_key, reverse=descending)
    if "NextToken" in params:
        state = decode_token(params["NextToken"])
        if (
            state is None
            or state.get("sort") != [sort_by, descending]
            or not isinstance(state.get("after"), list)
        ):
            raise ValidationError("Invalid pagination token: NextToken was not issued for this request.")
        after = state["after"]
        selected = [
            job for job in selected if (sort_key(job) < after if descending else sort_key(job) > after)
        ]
    page = selected[: params.get("MaxResults", DEFAULT_MAX_RESULTS)]
    next_token = None
    if len(selected) > len(page):
        next_token = encode_token({"sort": [sort_by, descending], "after": sort_key(page[-1])})
    return page, next_token


class JobApi(ABC, Generic[JobT]):
    """The four operations of one kind of job; subclasses create, describe and summarise its jobs."""

    kind: ClassVar[str]  # "Training": CreateTrainingJob, TrainingJobName, TrainingJobArn...
    summaries_key: ClassVar[str]  # the list answer's member
    default_order: ClassVar[str] = "Ascending"
    stoppable: ClassVar[str] = "an InProgress job"  # in the error for stopping an ended job

    def __init__(
        self,
        store: JobTable[JobT],
        config: LocalAwsConfig,
        engine: Engine,
        on_change: Callable[[], None],
    ) -> None:
        self.store = store
        self.config = config
        self.engine = engine
        self.on_change = on_change

    def handlers(self) -> dict[str, Handler]:
        return {
            f"Create{self.kind}Job": self.create_job,
            f"Describe{self.kind}Job": self.describe_job,
            f"List{self.kind}Jobs": self.list_jobs,
            f"Stop{self.kind}Job": self.stop_job,
        }

    def create_job(self, params: dict[str, Any]) -> dict[str, Any]:
        self.store.check_name_free(params[f"{self.kind}JobName"])
        try:
            self.check(params)
            if self.engine.check is not None:
                load_object(self.engine.check)(params, self.config)
        except ValueError as error:
            raise ValidationError(str(error)) from error
        job = self.create(params)
        self.on_change()
        return {f"{self.kind}JobArn": job.arn}

    def list_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        page, next_token = list_page(self.listed(params), params, default_order=self.default_order)
        return {
            self.summaries_key: [self._summary_of(job) | self.summary(job) for job in page],
            "NextToken": next_token,
        }

    def stop_job(self, params: dict[str, Any]) -> None:
        job = self.store.get(params[f"{self.kind}JobName"])
        if job.status == "Stopping":
            return
        if job.status not in RUNNABLE_STATUSES:
            raise ValidationError(
                f"{self.kind} job {job.name} is {job.status}; only {self.stoppable} can be stopped."
            )
        self.store.request_stop(job.name)
        self.on_change()

    # What each kind says.

    def check(self, params: dict[str, Any]) -> None:
        """The kind's own checks of a create request, beyond its engine's; ValueError says what is wrong."""

    @abstractmethod
    def create(self, params: dict[str, Any]) -> JobT:
        """The new job of a checked request."""

    @abstractmethod
    def describe_job(self, params: dict[str, Any]) -> dict[str, Any]:
        """``Describe<Kind>Job``."""

    def listed(self, params: dict[str, Any]) -> Sequence[JobT]:
        """The jobs a list request chooses from, before its filters."""
        return self.store.all()

    @abstractmethod
    def summary(self, job: JobT) -> dict[str, Any]:
        """The members of the job's ``List<Kind>Jobs`` summary beyond every kind's (``_summary_of``)."""

    def _summary_of(self, job: JobT) -> dict[str, Any]:
        return {
            f"{self.kind}JobName": job.name,
            f"{self.kind}JobArn": job.arn,
            "CreationTime": job.creation_time,
            "LastModifiedTime": job.last_modified_time,
            f"{self.kind}JobStatus": job.status,
        }
