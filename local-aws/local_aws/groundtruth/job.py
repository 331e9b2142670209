"""Run a Ground Truth bounding-box labeling job with the simulated public crowd or a private workteam.

The job reads its inputs from S3, renders the worker UI template for every task, has
NumberOfHumanWorkersPerDataObject workers box each image (simulated ones for the public workteam, people in
the worker portal for a private one: ``private_team``), consolidates their boxes and writes the output
tree. Without automated labeling there are two iterations, as on AWS: a probe batch of the first
min(10, n) objects, then the rest, offered to the crowd in batches of MaxConcurrentTaskCount objects. With
automated labeling (``LabelingJobAlgorithmsConfig``) on a dataset of at least
``LocalAwsConfig.auto_labeling_min_objects`` objects, ``auto_labeling`` runs AWS's iterations instead; on a
smaller one the job is labeled by humans, and its log (``/aws/sagemaker/LabelingJobs``) says why.
Objects are processed on a few threads (S3 I/O dominates); their results do not depend on the threads'
timing. An object that cannot be labeled (not found, not an image, not a seeded image for the simulated
crowd) fails alone; bad job inputs fail the job.

For the public crowd, times in the tree follow a simulated clock: a task is accepted when its batch is
offered plus the worker's pickup delay and submitted timeSpentInSeconds later; a batch is consolidated a
second after its last submission. The clock starts at the real time and never falls behind it. A private
team's times are the real ones.

The job owns ``<S3OutputPath>/<job name>/`` (job names are unique): a run first removes what an earlier,
interrupted run of the same job wrote there, so that the tree holds the files of one run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from local_aws.config import LocalAwsConfig
from local_aws.groundtruth.auto_labeling import AutoLabelingLoop
from local_aws.groundtruth.auto_labeling_detector import SageMakerDetector
from local_aws.groundtruth.consolidation import consolidate
from local_aws.groundtruth.crowd import Crowd, targets_of
from local_aws.groundtruth.data_objects import ObjectResult, read_image
from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.groundtruth.inputs import read_label_categories, read_manifest, read_template
from local_aws.groundtruth.job_log import LabelingJobLog
from local_aws.groundtruth.output_tree import (
    OutputTree,
    failed_content,
    labeled_content,
    output_line,
    utc_now,
    worker_answer,
)
from local_aws.groundtruth.private_team import PrivateTeamJob, PrivateTeamLabeling
from local_aws.groundtruth.request_checks import LabelingJobSpec, labeling_job_spec
from local_aws.groundtruth.templates import BOUNDING_BOX_TAG, TaskRenderer, bounding_box_element
from local_aws.reference_index import ReferenceIndex, content_key
from local_aws.s3_objects import delete_prefix, split_s3_uri, write_json, write_lines
from local_aws.sagemaker_service.store import StateDb

PROBE_BATCH_SIZE = 10
THREADS = 4
PRESIGNED_URL_EXPIRY_S = 900

Report = Callable[[str, dict[str, int]], None]
_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def map_until_stopped(
    function: Callable[[_Item], _Result],
    items: Sequence[_Item],
    should_stop: Callable[[], bool],
    threads: int = THREADS,
) -> tuple[list[_Result], bool]:
    """``function`` over ``items`` on a few threads, in order, asking ``should_stop`` before each item.

    Returns the results of the items started (always a prefix of ``items``) and whether it stopped early.
    ``should_stop`` is called on this thread only. An exception of ``function`` cancels what is queued and
    is raised here.
    """
    results: list[_Result] = []
    pending: deque[Future[_Result]] = deque()
    position = 0
    stopped = False
    with ThreadPoolExecutor(max_workers=threads) as pool:
        try:
            while True:
                while len(pending) < 2 * threads and position < len(items) and not stopped:
                    stopped = should_stop()
                    if not stopped:
                        pending.append(pool.submit(function, items[position]))
                        position += 1
                if not pending:
                    return results, stopped
                results.append(pending.popleft().result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise


class _LabelingRun:
    """One job's inputs, workforce and progress."""

    def __init__(self, spec: LabelingJobSpec, job_name: str, config: LocalAwsConfig, report: Report) -> None:
        self.spec = spec
        self.job_name = job_name
        self.s3 = config.boto3_client("s3")
        self.lines = read_manifest(self.s3, spec.manifest_uri)
        self.categories = read_label_categories(self.s3, spec.label_categories_uri)
        self.renderer = TaskRenderer(
            read_template(self.s3, spec.template_uri), spec.template_uri, self._presign
        )
        self.element_name = self._bounding_box_element_name()
        self.tree = OutputTree(spec.output_path, job_name)
        try:
            delete_prefix(self.s3, self.tree.bucket, self.tree.prefix)
        except ClientError as err:
            raise LabelingJobFailed(
                f"ClientError: Cannot write to the output path {spec.output_path}: {err}"
            ) from None
        self.output = [line.text for line in self.lines]
        self.labeled = self.machine_labeled = self.failed = 0
        self.clock = utc_now()
        self.private_team: PrivateTeamLabeling | None = None
        if spec.private_team is None:
            self.crowd = Crowd(job_name, config.region)
            self.index = ReferenceIndex(config.reference_index_db)
            self.class_names = self.index.class_names()
        else:
            job = PrivateTeamJob(
                job_name,
                spec,
                self.lines,
                self.categories,
                self.element_name,
                self.tree,
                self.s3,
                config.region,
            )
            self.private_team = PrivateTeamLabeling(
                job,
                StateDb(config.state_db),
                lambda labeled, failed: report("InProgress", self.counters(labeled, failed)),
            )

    def _presign(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        return self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=PRESIGNED_URL_EXPIRY_S
        )

    def _bounding_box_element_name(self) -> str:
        """The name the worker answers are stored under, from the template rendered for the first object."""
        where = f"ClientError: The worker UI template {self.spec.template_uri}"
        element = bounding_box_element(self.renderer.render(self.lines[0].source_ref, self.categories))
        if element is None:
            raise LabelingJobFailed(
                f"{where} renders no <{BOUNDING_BOX_TAG}> element, so it is not a bounding-box template; "
                "the local stack runs only bounding-box jobs"
            )
        name = element.get("name", "").strip()
        if not name:
            raise LabelingJobFailed(
                f"{where}: its <{BOUNDING_BOX_TAG}> element has no name attribute, the key of the answers"
            )
        return name

    def counters(self, batch_labeled: int = 0, batch_failed: int = 0) -> dict[str, int]:
        """LabelCounters, with the objects of the batch in progress that are already labeled or failed."""
        labeled, failed = self.labeled + batch_labeled, self.failed + batch_failed
        return {
            "TotalLabeled": labeled + self.machine_labeled,
            "HumanLabeled": labeled,
            "MachineLabeled": self.machine_labeled,
            "FailedNonRetryableError": failed,
            "Unlabeled": len(self.lines) - labeled - self.machine_labeled - failed,
        }

    def plan(self) -> Iterator[tuple[int, list[range]]]:
        """Iteration 1, the probe batch; iteration 2, the rest in batches of MaxConcurrentTaskCount.

        A private team gets the rest as one batch: the portal keeps at most MaxConcurrentTaskCount objects
        out at a time, and people need not wait for the slowest object of a batch before the next.
        """
        n = len(self.lines)
        probe = min(PROBE_BATCH_SIZE, n)
        yield 1, [range(probe)]
        if probe < n:
            size = n if self.private_team is not None else self.spec.max_concurrent_tasks
            yield 2, [range(start, min(start + size, n)) for start in range(probe, n, size)]

    def label_batch(
        self, iteration: int, batch: Sequence[int], should_stop: Callable[[], bool]
    ) -> tuple[list[ObjectResult], bool]:
        if self.private_team is not None:
            return self.private_team.label_batch(iteration, batch, should_stop)
        offered = max(self.clock, utc_now())
        return map_until_stopped(lambda oid: self.label_object(iteration, offered, oid), batch, should_stop)

    def label_object(self, iteration: int, offered: datetime, object_id: int) -> ObjectResult:
        source_ref = self.lines[object_id].source_ref
        image = read_image(self.s3, source_ref)
        if isinstance(image, str):
            return ObjectResult(object_id, image)
        data, width, height, depth = image.data, image.width, image.height, image.depth
        reference = self.index.lookup(data)
        if reference is None:
            return ObjectResult(
                object_id,
                f"ClientError: No simulated worker can label {source_ref}: the local stack's public crowd "
                "is simulated and draws boxes only from the reference boxes of images the stack seeded, and "
                f"this image (SHA-256 {content_key(data)}) is not one of them",
            )
        if BOUNDING_BOX_TAG not in self.renderer.render(source_ref, self.categories):
            raise LabelingJobFailed(
                f"ClientError: The worker UI template {self.spec.template_uri} renders no "
                f"<{BOUNDING_BOX_TAG}> element for the data object {source_ref}"
            )
        targets = targets_of(reference, self.categories, self.class_names, width, height)
        answers = [
            self.crowd.answer(
                worker, object_id, targets, self.categories, (width, height), self.spec.task_time_limit_s
            )
            for worker in self.crowd.assign(object_id, self.spec.workers_per_object)
        ]
        documents = []
        submissions = []
        for answer in answers:
            accepted = offered + timedelta(seconds=answer.pickup_seconds)
            submitted = accepted + timedelta(seconds=answer.seconds)
            submissions.append(submitted)
            documents.append(worker_answer(answer, accepted, submitted, self.element_name, (width, height)))
        last = max(submissions)
        key = self.tree.worker_response_key(iteration, object_id, last)
        write_json(self.s3, self.tree.bucket, key, {"answers": documents})
        boxes = consolidate([answer.boxes for answer in answers], width, height)
        return ObjectResult(object_id, None, (width, height, depth), tuple(boxes), last)

    def record(self, iteration: int, results: Sequence[ObjectResult]) -> None:
        """Consolidation response of a batch, and its objects' output lines."""
        submissions = [r.last_submission for r in results if r.last_submission is not None]
        consolidated_at = max([self.clock, *submissions]) + timedelta(seconds=1)
        entries: list[dict[str, Any]] = []
        for result in results:
            if result.failure_reason is not None:
                content = failed_content(self.spec.label_attribute, self.job_name, result.failure_reason)
                self.failed += 1
            else:
                content = labeled_content(
                    self.spec.label_attribute,
                    self.job_name,
                    self.categories,
                    result.image_size,
                    result.boxes,
                    consolidated_at,
                )
                entries.append(
                    {"datasetObjectId": str(result.object_id), "consolidatedAnnotation": {"content": content}}
                )
                self.labeled += 1
            self.output[result.object_id] = output_line(self.lines[result.object_id].fields, content)
        if entries:
            key = self.tree.consolidation_response_key(iteration, consolidated_at)
            write_json(self.s3, self.tree.bucket, key, entries)
            self.clock = consolidated_at

    def record_machine_label(self, object_id: int, content: dict[str, Any]) -> None:
        self.output[object_id] = output_line(self.lines[object_id].fields, content)
        self.machine_labeled += 1

    def write_manifest(self, key: str) -> None:
        write_lines(self.s3, self.tree.bucket, key, self.output)


def run_labeling_job(
    request: dict[str, Any],
    *,
    job_name: str,
    job_arn: str,
    config: LocalAwsConfig,
    report: Report,
    should_stop: Callable[[], bool],
) -> dict[str, Any]:
    """Run the job of a CreateLabelingJob ``request`` to its end; LabelingJobFailed if it fails.

    ``report("InProgress", counters)`` is called once the inputs are read and after every batch;
    ``should_stop`` is asked between tasks, and a stop keeps what was labeled. ``job_arn`` identifies the
    job to the caller only: nothing in AWS's output tree carries it.
    """
    try:
        spec = labeling_job_spec(request, config)
    except ValueError as err:
        raise LabelingJobFailed(f"ClientError: {err}") from None
    log = LabelingJobLog(config, job_name)
    detector = None
    if spec.auto_labeling is not None:
        # Before the output tree is cleared: the jobs an interrupted run left must not write into it.
        detector = SageMakerDetector(spec, job_name, config, log, should_stop)
    run = _LabelingRun(spec, job_name, config, report)
    report("InProgress", run.counters())
    if detector is not None:
        if len(run.lines) >= config.auto_labeling_min_objects:
            return AutoLabelingLoop(run, detector, report, should_stop, log).run()
        log(
            f"Automated data labeling is off: the dataset has {len(run.lines)} objects, fewer than the "
            f"{config.auto_labeling_min_objects} the local stack requires for it "
            "(LOCAL_AWS_AUTO_LABELING_MIN_OBJECTS; AWS requires 1,250); humans label every object"
        )
    stopped = False
    for iteration, batches in run.plan():
        ran = False
        for batch in batches:
            results, stopped = run.label_batch(iteration, batch, should_stop)
            if results:
                ran = True
                run.record(iteration, results)
                report("InProgress", run.counters())
            if stopped:
                break
        if ran:
            run.write_manifest(run.tree.intermediate_manifest_key(iteration))
        if stopped:
            break
    run.write_manifest(run.tree.output_manifest_key)
    return {
        "status": "Stopped" if stopped else "Completed",
        "counters": run.counters(),
        "output_dataset_s3_uri": run.tree.uri(run.tree.output_manifest_key),
    }
