"""Labeling by the people of a private workteam: objects go into the worker portal's queue, answers come back.

A batch's objects that can be read are offered in the queue (``workforce.task_queue``); people take them in
the portal. The engine polls the queue: an object with ``NumberOfHumanWorkersPerDataObject`` submitted
answers is consolidated as the simulated crowd's are and its worker-response file written, with the workers'
real IDs; an object still short of answers ``TaskAvailabilityLifetimeInSeconds`` after it was first offered
fails alone; a stop request withdraws what is still open.

Answers live in the queue from the moment they are submitted, and an object keeps the time it was first
offered, so a job resumed after a restart picks up every answer already given and carries on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from local_aws.boxes import PixelBox
from local_aws.groundtruth.consolidation import consolidate
from local_aws.groundtruth.data_objects import ObjectResult, read_image
from local_aws.groundtruth.inputs import ManifestLine
from local_aws.groundtruth.output_tree import OutputTree, aws_timestamp
from local_aws.groundtruth.request_checks import LabelingJobSpec
from local_aws.s3_objects import write_json
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.task_queue import ObjectToLabel, PrivateJob, SubmittedAnswer, TaskQueue

POLL_INTERVAL_S = 0.5
# Ground Truth's private workforces sign in through Cognito; the stack's accounts are its own user pool.
IDENTITY_PROVIDER = "Cognito"

Progress = Callable[[int, int], None]  # objects labeled and failed so far in the batch


@dataclass(frozen=True)
class PrivateTeamJob:
    """What the private team's labeling needs of the job's run."""

    job_name: str
    spec: LabelingJobSpec
    lines: Sequence[ManifestLine]
    categories: Sequence[str]
    element_name: str
    tree: OutputTree
    s3: Any
    region: str


class PrivateTeamLabeling:
    """The batches of one job, labeled by people in the portal."""

    def __init__(self, job: PrivateTeamJob, db: StateDb, progress: Progress) -> None:
        team = job.spec.private_team
        if team is None:
            raise ValueError(f"labeling job {job.job_name} is not for a private workteam")
        self.job = job
        self.team = team
        self.queue = TaskQueue(db)
        self.progress = progress
        self.depths: dict[int, int] = {}  # image depth (bands) by object, from reading it
        self.queue.open_job(
            PrivateJob(
                job_name=job.job_name,
                workteam_arn=team.workteam_arn,
                title=team.title,
                description=team.description,
                workers_per_object=job.spec.workers_per_object,
                max_concurrent_tasks=job.spec.max_concurrent_tasks,
                task_time_limit_s=job.spec.task_time_limit_s,
                labels=tuple(job.categories),
                template_uri=job.spec.template_uri,
            )
        )

    def label_batch(
        self, iteration: int, batch: Sequence[int], should_stop: Callable[[], bool]
    ) -> tuple[list[ObjectResult], bool]:
        """Offer the batch and wait until each object is labeled, failed or withdrawn by a stop."""
        results: dict[int, ObjectResult] = {}
        offered: list[ObjectToLabel] = []
        for object_id in batch:
            source_ref = self.job.lines[object_id].source_ref
            image = read_image(self.job.s3, source_ref)
            if isinstance(image, str):
                results[object_id] = ObjectResult(object_id, image)
            else:
                offered.append(ObjectToLabel(object_id, iteration, source_ref, image.width, image.height))
                self.depths[object_id] = image.depth
        self.queue.offer(self.job.job_name, offered, self.team.task_availability_lifetime_s, time.time())
        pending = {item.object_id: item for item in offered}
        stopped = False
        while pending:
            self._collect(iteration, pending, results)
            self.progress(
                sum(1 for r in results.values() if r.failure_reason is None),
                sum(1 for r in results.values() if r.failure_reason is not None),
            )
            if not pending:
                break
            if should_stop():
                self.queue.close_objects(self.job.job_name, list(pending), "withdrawn", time.time())
                stopped = True
                break
            time.sleep(POLL_INTERVAL_S)
        return [results[object_id] for object_id in sorted(results)], stopped

    def _collect(
        self, iteration: int, pending: dict[int, ObjectToLabel], results: dict[int, ObjectResult]
    ) -> None:
        """Move the pending objects that are done or expired into ``results``."""
        needed = self.job.spec.workers_per_object
        now = time.time()
        states = self.queue.object_states(self.job.job_name, list(pending))
        answers = self.queue.answers(self.job.job_name, list(pending))
        for object_id, item in list(pending.items()):
            given = answers[object_id][:needed]
            if len(given) >= needed:
                results[object_id] = self._labeled(iteration, item, given)
                self.queue.close_objects(self.job.job_name, [object_id], "done", now)
            elif states[object_id][1] <= now:
                results[object_id] = ObjectResult(object_id, self._expired(item, len(given)))
                self.queue.close_objects(self.job.job_name, [object_id], "expired", now)
            else:
                continue
            del pending[object_id]

    def _expired(self, item: ObjectToLabel, answered: int) -> str:
        lifetime = self.team.task_availability_lifetime_s
        return (
            f"ClientError: The data object {item.source_ref} was not labeled within the task availability "
            f"lifetime (HumanTaskConfig.TaskAvailabilityLifetimeInSeconds, {lifetime} s): "
            f"{answered} of the {self.job.spec.workers_per_object} workers it needs submitted an answer"
        )

    def _labeled(self, iteration: int, item: ObjectToLabel, given: Sequence[SubmittedAnswer]) -> ObjectResult:
        """Write the object's worker-response file and consolidate its answers."""
        documents = [self._worker_answer(answer) for answer in given]
        last = _utc(max(answer.submitted_at for answer in given))
        key = self.job.tree.worker_response_key(iteration, item.object_id, last)
        write_json(self.job.s3, self.job.tree.bucket, key, {"answers": documents})
        boxes = consolidate([self._boxes(answer) for answer in given], item.width, item.height)
        size = (item.width, item.height, self.depths[item.object_id])
        return ObjectResult(item.object_id, None, size, tuple(boxes), last)

    def _boxes(self, answer: SubmittedAnswer) -> list[PixelBox]:
        submitted = answer.answer[self.job.element_name]["boundingBoxes"]
        return [
            PixelBox(box["label"], box["left"], box["top"], box["width"], box["height"]) for box in submitted
        ]

    def _worker_answer(self, answer: SubmittedAnswer) -> dict[str, Any]:
        """An entry of ``answers`` as Ground Truth writes it for a private team's worker."""
        return {
            "workerId": answer.worker_id,
            "acceptanceTime": aws_timestamp(_utc(answer.assigned_at)),
            "submissionTime": aws_timestamp(_utc(answer.submitted_at)),
            "timeSpentInSeconds": round(answer.submitted_at - answer.assigned_at, 3),
            "answerContent": answer.answer,
            "workerMetadata": {
                "identityData": {
                    "identityProviderType": IDENTITY_PROVIDER,
                    "issuer": f"https://cognito-idp.{self.job.region}.amazonaws.com/{self.job.region}_localaws",
                    "sub": answer.worker_sub,
                }
            },
        }


def _utc(epoch_seconds: float) -> datetime:
    """A time as the output tree records it: naive UTC."""
    return datetime.fromtimestamp(epoch_seconds, UTC).replace(tzinfo=None)
