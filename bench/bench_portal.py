"""How long a worker of a private team waits in the worker portal between Submit and the next image.

The bench sets up what the labeling engine sets up for a private workteam, in a temporary data directory:
an S3 on moto's server in this process (``ThreadedMotoServer`` on a free port), the job's worker UI template
(the pipeline's own ``instructions_template("Bird", None)``) and a pool of seeded synthetic JPEGs in it; a
workteam with ``--workers`` accounts (argon2id hashes, as ``python -m local_aws workers`` makes them); a
labeling job InProgress (created, claimed and reported as the engine does) whose ``--objects`` objects are
opened and offered in the task queue (``TaskQueue.open_job`` and ``offer``) with 3 workers per object and
MaxConcurrentTaskCount 1000. Object ``n`` shows image ``n`` modulo the pool. The portal then runs as the
stack runs it: the stack's own portal service command (``python -u -m local_aws.portal``, one uvicorn
process, its access log to a file) with the stack's environment.

Each simulated worker is a thread with its own ``httpx.Client`` (its own cookies, keep-alive), driving the
portal over HTTP as a browser does: GET and POST ``/sign-in``, POST ``/jobs/<job>/start``, then in a loop:

1. the task page is there: read its ``csrf-token`` and ``crowd-submit-url`` meta tags and its image URL;
2. GET the image from ``/task-images/...`` (timed on its own) and read its size from the bytes;
3. POST five boxes inside the image as the crowd form does (JSON, ``X-CSRF-Token``), which answers with the
   ``next`` task's URL, and GET that task page.

The figure is 3: submit POST plus next page GET, what a person waits for between pressing Submit and seeing
the next task (the image then loads). Workers do not pause between tasks, so 10 simulated workers load the
portal far more than 10 people would. Measured in one run, after ``--warm-up`` steps per worker:

- the baseline: one worker alone (the others signed in, idle): p50, p95 and max over ``--baseline-submits``;
- ``--workers`` workers at once, ``--submits`` each: p50, p95, max, and submits per second over the whole
  loop (image fetch included);
- plain throughput under the same threads for ``--seconds`` each: requests per second of the task page
  (each worker reloading their current task) and of ``/_local/health`` (no handler work: the HTTP floor).

The client threads and moto share the machine with the portal, so the figures include their CPU; the
machine's core count and load average (before and after) are recorded. Target (the issue's, set for two
cores): p95 of submit to next page below 200 ms at 10 workers. Figures are printed and written to
``bench/results/portal.json``; nothing is asserted. Everything started is stopped, the data directory removed.

Usage: ``.venv/bin/python bench/bench_portal.py [--objects N] [--workers N] [--submits N] [--seconds S]``
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np
from moto.server import ThreadedMotoServer
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT)]

from ground_truth_pipeline.instructions import BOUNDING_BOX_ELEMENT_NAME, instructions_template  # noqa: E402
from local_aws.cli import portal_service  # noqa: E402
from local_aws.config import LocalAwsConfig  # noqa: E402
from local_aws.portal.forms import CSRF_FIELD, CSRF_HEADER  # noqa: E402
from local_aws.sagemaker_service.labeling_jobs import LabelingJobStore  # noqa: E402
from local_aws.sagemaker_service.store import StateDb  # noqa: E402
from local_aws.synthetic_open_images import iter_images  # noqa: E402
from local_aws.workforce.accounts import WorkerAccounts  # noqa: E402
from local_aws.workforce.task_queue import ObjectToLabel, PrivateJob, TaskQueue  # noqa: E402
from local_aws.workforce.teams import WorkforceStore, WorkteamStore  # noqa: E402

JOB = "bench-portal-birds"
TEAM = "bench-birders"
BUCKET = "bench-portal"
CLASS_NAME = "Bird"
PASSWORD = "correct horse battery"
WORKERS_PER_OBJECT = 3
MAX_CONCURRENT_TASKS = 1000
TASK_TIME_LIMIT_S = 600
TASK_AVAILABILITY_LIFETIME_S = 24 * 3600
DISTINCT_IMAGES = 40
IMAGE_SEED = 0
BOXES_PER_ANSWER = 5
START_TIMEOUT_S = 60
TARGET_WORKERS = 10
TARGET_P95_MS = 200.0
RESULTS = ROOT / "bench" / "results" / "portal.json"

_SIGN_IN_CSRF = re.compile(rf'name="{CSRF_FIELD}" value="([^"]+)"')
_META = re.compile(r'<meta name="([a-z-]+)" content="([^"]*)">')
_IMAGE_URL = re.compile(r'src="(/task-images/[^"]+)"')


@dataclass(frozen=True)
class TaskPage:
    url: str
    csrf_token: str
    submit_url: str
    image_url: str


@dataclass(frozen=True)
class Step:
    """One task done: seconds of the image GET, the submit POST and the next task page's GET."""

    image_s: float
    submit_s: float
    next_page_s: float

    @property
    def waited_s(self) -> float:
        return self.submit_s + self.next_page_s


@dataclass(frozen=True)
class LatencyRow:
    """Submit to next task page at ``workers`` concurrent workers, in ms; image fetch reported apart."""

    workers: int
    submits: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    submit_post_p50_ms: float
    next_page_get_p50_ms: float
    image_get_p50_ms: float
    image_get_p95_ms: float
    submits_per_s: float  # all workers together, over the loop (image fetches included)
    # The portal process's CPU (user + system) over the loop, per task: image GET, submit, next page.
    portal_cpu_ms_per_submit: float

    @classmethod
    def of(cls, workers: int, steps: Sequence[Step], wall_s: float, portal_cpu_s: float) -> LatencyRow:
        def ms(values: Sequence[float], q: float) -> float:
            return round(float(np.percentile(values, q)) * 1000, 1)

        waited = [step.waited_s for step in steps]
        images = [step.image_s for step in steps]
        return cls(
            workers=workers,
            submits=len(steps),
            p50_ms=ms(waited, 50),
            p95_ms=ms(waited, 95),
            max_ms=ms(waited, 100),
            submit_post_p50_ms=ms([step.submit_s for step in steps], 50),
            next_page_get_p50_ms=ms([step.next_page_s for step in steps], 50),
            image_get_p50_ms=ms(images, 50),
            image_get_p95_ms=ms(images, 95),
            submits_per_s=round(len(steps) / wall_s, 1),
            portal_cpu_ms_per_submit=round(portal_cpu_s / len(steps) * 1000, 2),
        )


class PortalError(Exception):
    """The portal answered something a browser would not go on from."""


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise PortalError(
            f"{response.request.method} {response.request.url.path}: expected {status}, got"
            f" {response.status_code}: {response.text[:300]}"
        )
    return response


class Worker:
    """One person's browser on the portal: its own cookies and connection."""

    def __init__(self, base_url: str, name: str) -> None:
        self.name = name
        self.client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=60, trust_env=False)
        self.page: TaskPage | None = None
        self.boxes = random.Random(name)

    def sign_in_and_start(self) -> None:
        """Sign in with the form's login CSRF token, open the job list, start the job: the first task page."""
        form = _expect(self.client.get("/sign-in"), 200)
        token = _SIGN_IN_CSRF.search(form.text)
        if token is None:
            raise PortalError("the sign-in page has no CSRF field")
        fields = {CSRF_FIELD: token.group(1), "name": self.name, "password": PASSWORD}
        _expect(self.client.post("/sign-in", data=fields), 303)
        jobs = _expect(self.client.get("/"), 200)
        session_token = _SIGN_IN_CSRF.search(jobs.text)
        if session_token is None:
            raise PortalError("the job list has no CSRF field")
        started = _expect(self.client.post(f"/jobs/{JOB}/start", data={CSRF_FIELD: session_token[1]}), 303)
        self.page = self.load(started.headers["location"])

    def load(self, url: str) -> TaskPage:
        if not url.startswith("/tasks/"):
            raise PortalError(f"{self.name} got {url} instead of a task: the queue ran dry; raise --objects")
        html = _expect(self.client.get(url), 200).text
        metas = dict(_META.findall(html))
        image = _IMAGE_URL.search(html)
        if "csrf-token" not in metas or "crowd-submit-url" not in metas or image is None:
            raise PortalError(f"the task page {url} lacks its csrf-token, crowd-submit-url or image")
        return TaskPage(url, metas["csrf-token"], metas["crowd-submit-url"], image.group(1))

    def reload(self) -> None:
        """The current task page again (a browser's reload)."""
        assert self.page is not None
        _expect(self.client.get(self.page.url), 200)

    def health(self) -> None:
        _expect(self.client.get("/_local/health"), 200)

    def label(self) -> Step:
        """See the image, draw boxes in it, submit, and get the next task page."""
        assert self.page is not None
        started = time.perf_counter()
        image = _expect(self.client.get(self.page.image_url), 200).content
        width, height = Image.open(io.BytesIO(image)).size
        body = json.dumps(self.answer(width, height))
        shown = time.perf_counter()
        submitted = _expect(
            self.client.post(
                self.page.submit_url,
                content=body,
                headers={"Content-Type": "application/json", CSRF_HEADER: self.page.csrf_token},
            ),
            200,
        )
        answered = time.perf_counter()
        self.page = self.load(submitted.json()["next"])
        done = time.perf_counter()
        return Step(shown - started, answered - shown, done - answered)

    def answer(self, width: int, height: int) -> dict:
        """``BOXES_PER_ANSWER`` boxes inside a ``width`` x ``height`` image, as the crowd form posts them."""
        boxes = []
        for _ in range(BOXES_PER_ANSWER):
            box_width = self.boxes.randint(1, width // 2)
            box_height = self.boxes.randint(1, height // 2)
            boxes.append(
                {
                    "height": box_height,
                    "label": CLASS_NAME,
                    "left": self.boxes.randint(0, width - box_width),
                    "top": self.boxes.randint(0, height - box_height),
                    "width": box_width,
                }
            )
        return {
            BOUNDING_BOX_ELEMENT_NAME: {
                "boundingBoxes": boxes,
                "inputImageProperties": {"height": height, "width": width},
            }
        }

    def close(self) -> None:
        self.client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def set_up_job(config: LocalAwsConfig, objects: int, workers: int) -> list[str]:
    """S3 content, the team, its accounts and the job's queue, as the engine leaves them; the worker names."""
    s3 = config.boto3_client("s3")
    s3.create_bucket(Bucket=BUCKET)
    template_uri = f"s3://{BUCKET}/templates/instructions.liquid"
    s3.put_object(
        Bucket=BUCKET, Key="templates/instructions.liquid", Body=instructions_template(CLASS_NAME, None)
    )
    sizes = []
    for number, image in enumerate(iter_images(DISTINCT_IMAGES, seed=IMAGE_SEED)):
        s3.put_object(Bucket=BUCKET, Key=f"images/{number}.jpg", Body=image.jpeg, ContentType="image/jpeg")
        sizes.append((image.width, image.height))

    db = StateDb(config.state_db)
    try:
        WorkforceStore(db, config).ensure()
        team_arn = WorkteamStore(db, config).create(TEAM, "default", "bench team", []).arn
        accounts = WorkerAccounts(db, config.region)
        names = [f"worker-{number:02d}" for number in range(1, workers + 1)]
        for name in names:
            accounts.add(name, PASSWORD, TEAM)
        title, description = "Draw a box around each bird", "Every bird in the image, one box each"
        jobs = LabelingJobStore(db)
        jobs.create(
            {
                "LabelingJobName": JOB,
                "HumanTaskConfig": {
                    "WorkteamArn": team_arn,
                    "UiConfig": {"UiTemplateS3Uri": template_uri},
                    "TaskTitle": title,
                    "TaskDescription": description,
                    "NumberOfHumanWorkersPerDataObject": WORKERS_PER_OBJECT,
                    "TaskTimeLimitInSeconds": TASK_TIME_LIMIT_S,
                    "TaskAvailabilityLifetimeInSeconds": TASK_AVAILABILITY_LIFETIME_S,
                    "MaxConcurrentTaskCount": MAX_CONCURRENT_TASKS,
                },
            },
            config,
        )
        attempt = jobs.claim(JOB, max_attempts=1)
        if attempt is None:
            raise SystemExit(f"the labeling job {JOB} could not be claimed")
        jobs.report(JOB, attempt, "InProgress", {})
        queue = TaskQueue(db)
        queue.open_job(
            PrivateJob(
                job_name=JOB,
                workteam_arn=team_arn,
                title=title,
                description=description,
                workers_per_object=WORKERS_PER_OBJECT,
                max_concurrent_tasks=MAX_CONCURRENT_TASKS,
                task_time_limit_s=TASK_TIME_LIMIT_S,
                labels=(CLASS_NAME,),
                template_uri=template_uri,
            )
        )
        offered = [
            ObjectToLabel(
                n, 0, f"s3://{BUCKET}/images/{n % DISTINCT_IMAGES}.jpg", *sizes[n % DISTINCT_IMAGES]
            )
            for n in range(objects)
        ]
        queue.offer(JOB, offered, lifetime_s=TASK_AVAILABILITY_LIFETIME_S, now=time.time())
    finally:
        db.close()
    return names


@contextmanager
def running_portal(config: LocalAwsConfig) -> Iterator[tuple[str, int]]:
    """The portal started with the stack's own command and environment; its base URL and pid while it runs."""
    spec = portal_service(config)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LOCAL_AWS_"))},
        **spec.env,
    }
    spec.log_path.parent.mkdir(parents=True, exist_ok=True)
    with spec.log_path.open("wb") as log:
        process = subprocess.Popen(
            spec.prepare(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=spec.cwd,
            env=environment,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not spec.probe():
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the portal did not start:\n{spec.log_path.read_text()[-2000:]}")
            time.sleep(0.1)  # waiting for the port to answer, before anything is measured
        yield spec.endpoint, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def answers_stored(config: LocalAwsConfig, objects: int) -> int:
    """The answers in the task queue, as the engine would collect them: every submit the portal took."""
    db = StateDb(config.state_db)
    try:
        return sum(len(given) for given in TaskQueue(db).answers(JOB, range(objects)).values())
    finally:
        db.close()


def together(workers: Sequence[Worker], run: Callable[[Worker], object]) -> tuple[list, float]:
    """``run`` on each worker in its own thread, all released at once; the results and the wall seconds."""
    barrier = threading.Barrier(len(workers) + 1)
    results: list = [None] * len(workers)
    errors: list[BaseException] = []

    def thread(index: int) -> None:
        barrier.wait()
        try:
            results[index] = run(workers[index])
        except BaseException as error:  # reported in the main thread
            errors.append(error)

    threads = [threading.Thread(target=thread, args=(index,)) for index in range(len(workers))]
    for each in threads:
        each.start()
    barrier.wait()
    started = time.perf_counter()
    for each in threads:
        each.join()
    wall = time.perf_counter() - started
    if errors:
        raise errors[0]
    return results, wall


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process has used so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def label_loop(workers: Sequence[Worker], warm_up: int, submits: int, portal_pid: int) -> LatencyRow:
    """Each worker labels ``warm_up`` tasks, then all ``submits`` more at once; the measured row."""
    together(workers, lambda worker: [worker.label() for _ in range(warm_up)])
    cpu_before = cpu_seconds(portal_pid)
    results, wall = together(workers, lambda worker: [worker.label() for _ in range(submits)])
    portal_cpu = cpu_seconds(portal_pid) - cpu_before
    return LatencyRow.of(len(workers), [step for steps in results for step in steps], wall, portal_cpu)


def requests_per_second(
    workers: Sequence[Worker], request: Callable[[Worker], None], seconds: float
) -> float:
    """Requests per second of ``request``, every worker sending one after another for ``seconds``."""
    for worker in workers:
        request(worker)  # warm

    def repeat(worker: Worker) -> int:
        count = 0
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            request(worker)
            count += 1
        return count

    counts, wall = together(workers, repeat)
    return round(sum(counts) / wall, 1)


def print_table(rows: Sequence[LatencyRow], throughput: dict[str, float], objects: int, cores: int) -> None:
    print(f"Worker portal: {objects} objects, {WORKERS_PER_OBJECT} workers per object, {cores} cores")
    print("submit -> next task page (ms); image GET apart")
    header = (
        f"{'workers':>7} {'submits':>7} {'p50':>7} {'p95':>7} {'max':>7} {'POST p50':>8} {'GET p50':>8}"
        f" {'image p50':>9} {'image p95':>9} {'submits/s':>9} {'portal CPU/submit':>17}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.workers:>7} {row.submits:>7} {row.p50_ms:>7.1f} {row.p95_ms:>7.1f} {row.max_ms:>7.1f}"
            f" {row.submit_post_p50_ms:>8.1f} {row.next_page_get_p50_ms:>8.1f} {row.image_get_p50_ms:>9.1f}"
            f" {row.image_get_p95_ms:>9.1f} {row.submits_per_s:>9.1f}"
            f" {row.portal_cpu_ms_per_submit:>14.1f} ms"
        )
    for name, rate in throughput.items():
        print(f"{name}: {rate:.1f} requests/s")


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=_positive("--objects"), default=2000, help="objects in the queue")
    parser.add_argument(
        "--workers", type=_positive("--workers"), default=TARGET_WORKERS, help="concurrent workers"
    )
    parser.add_argument(
        "--submits", type=_positive("--submits"), default=30, help="measured submits per worker"
    )
    parser.add_argument(
        "--baseline-submits",
        type=_positive("--baseline-submits"),
        default=100,
        help="submits of the lone worker",
    )
    parser.add_argument("--warm-up", type=int, default=3, help="unmeasured submits per worker first")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds of each throughput measurement")
    return parser.parse_args(argv)


def _positive(name: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be at least 1, got {value}")
        return value

    return parse


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()
    started = time.perf_counter()
    data_dir = Path(tempfile.mkdtemp(prefix="bench-portal-"))
    s3_port = _free_port()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    moto.start()
    workers: list[Worker] = []
    try:
        config = LocalAwsConfig(data_dir=data_dir, s3_port=s3_port, portal_port=_free_port())
        names = set_up_job(config, args.objects, args.workers)
        with running_portal(config) as (base_url, portal_pid):
            workers = [Worker(base_url, name) for name in names]
            together(workers, Worker.sign_in_and_start)
            rows = [label_loop(workers[:1], args.warm_up, args.baseline_submits, portal_pid)]
            rows.append(label_loop(workers, args.warm_up, args.submits, portal_pid))
            stored = answers_stored(config, args.objects)
            throughput = {
                f"task page GET, {len(workers)} workers": requests_per_second(
                    workers, Worker.reload, args.seconds
                ),
                f"/_local/health GET, {len(workers)} workers": requests_per_second(
                    workers, Worker.health, args.seconds
                ),
            }
    finally:
        for worker in workers:
            worker.close()
        moto.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    seconds = time.perf_counter() - started
    load_after = os.getloadavg()

    print_table(rows, throughput, args.objects, cores)
    print(f"answers stored in the queue: {stored} (every submit, warm-up included)")
    loaded = next((row for row in rows if row.workers == TARGET_WORKERS), None)
    met = {
        f"submit -> next task page p95 below {TARGET_P95_MS:.0f} ms at {TARGET_WORKERS} workers"
        f" ({cores} cores; the target is set for 2)": loaded is not None and loaded.p95_ms < TARGET_P95_MS
    }
    for name, ok in met.items():
        print(f"{'MET    ' if ok else 'NOT MET'} {name}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1 min); {seconds:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "settings": {
            "objects": args.objects,
            "workers": args.workers,
            "workers_per_object": WORKERS_PER_OBJECT,
            "max_concurrent_tasks": MAX_CONCURRENT_TASKS,
            "submits_per_worker": args.submits,
            "baseline_submits": args.baseline_submits,
            "warm_up_submits_per_worker": args.warm_up,
            "throughput_seconds": args.seconds,
            "distinct_images": DISTINCT_IMAGES,
            "boxes_per_answer": BOXES_PER_ANSWER,
            "s3": "moto ThreadedMotoServer in the bench process",
            "portal": "the stack's portal service command (python -u -m local_aws.portal), one process",
            "think_time_s": 0,
        },
        "cores": cores,
        "load_average_1min": {"before": round(load_before[0], 2), "after": round(load_after[0], 2)},
        "submit_to_next_page": [asdict(row) for row in rows],
        "answers_stored": stored,
        "requests_per_second": throughput,
        "target_p95_ms": TARGET_P95_MS,
        "targets": met,
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
