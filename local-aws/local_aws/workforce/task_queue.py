"""The tasks of labeling jobs for private teams: what the engine offers, what workers take and submit.

The labeling engine opens a job (``open_job``) and offers its objects (``offer``); the worker portal hands
each object to workers one task at a time (``next_task``) and stores answers the moment they are submitted
(``submit``); the engine collects them (``answers``) and closes objects that are done, expired or withdrawn
(``close_objects``). Everything is in the service's SQLite file, so a restart of either side loses nothing.

AWS's rules, enforced here in one transaction per hand-out:

- an object needs ``NumberOfHumanWorkersPerDataObject`` submitted answers from different workers; a worker
  never gets the same object twice, whatever became of their first task on it (submitted, skipped,
  released or timed out);
- at most ``MaxConcurrentTaskCount`` objects of a job are out (held by a worker) at a time;
- a task not submitted within ``TaskTimeLimitInSeconds`` expires, and its object goes back to the queue;
- an object is offered only until ``TaskAvailabilityLifetimeInSeconds`` after it was first offered;
- only the team's members see the job, and only while the job is InProgress.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from local_aws.sagemaker_service.store import StateDb

ACTIVE = "active"
SUBMITTED = "submitted"
SKIPPED = "skipped"
RELEASED = "released"
EXPIRED = "expired"
WITHDRAWN = "withdrawn"
GIVEN_BACK = frozenset({SKIPPED, RELEASED})
OBJECT_STATES = frozenset({"open", "done", EXPIRED, WITHDRAWN})


class TaskUnavailable(Exception):
    """A task the worker cannot act on any more; the message says why, in words for the worker."""


@dataclass(frozen=True)
class PrivateJob:
    """What the portal needs of a labeling job for a private team."""

    job_name: str
    workteam_arn: str
    title: str
    description: str
    workers_per_object: int
    max_concurrent_tasks: int
    task_time_limit_s: int
    labels: tuple[str, ...]
    template_uri: str

    @property
    def job_key(self) -> str:
        return self.job_name.lower()

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> PrivateJob:
        values = dict(row)
        values.pop("job_key")
        values["labels"] = tuple(json.loads(values["labels"]))
        return cls(**values)


@dataclass(frozen=True)
class ObjectToLabel:
    object_id: int
    iteration: int
    source_ref: str
    width: int
    height: int


@dataclass(frozen=True)
class Task:
    """One object handed to one worker."""

    id: int
    job_name: str
    object_id: int
    source_ref: str
    width: int
    height: int
    worker_name: str
    assigned_at: float
    deadline: float
    state: str


@dataclass(frozen=True)
class SubmittedAnswer:
    worker_name: str
    worker_id: str
    worker_sub: str
    assigned_at: float
    submitted_at: float
    answer: dict[str, Any]  # the answerContent, keyed by the element's name


@dataclass(frozen=True)
class JobOffer:
    """A job as a worker's job list shows it."""

    job_name: str
    title: str
    description: str
    waiting: int  # objects this worker could take now
    active_task_id: int | None  # the worker's task in progress, if any


_TASK_COLUMNS = """t.id, j.job_name, t.object_id, o.source_ref, o.width, o.height, t.worker_name,
    t.assigned_at, t.deadline, t.state"""
_TASK_FROM = """private_tasks t
    JOIN private_objects o ON o.job_key = t.job_key AND o.object_id = t.object_id
    JOIN private_jobs j ON j.job_key = t.job_key"""
# Jobs whose tasks workers may take: InProgress, for one of the worker's teams.
_WORKERS_JOBS = """private_jobs j
    JOIN labeling_jobs l ON l.name_key = j.job_key AND l.status = 'InProgress'
    JOIN workteams w ON w.arn = j.workteam_arn
    JOIN team_members m ON m.team_key = w.name_key AND m.worker_name = :worker"""
# Objects of job j that worker :worker could take at :now, concurrency limit aside.
_TAKEABLE = """o.job_key = j.job_key AND o.state = 'open' AND o.expires_at > :now
    AND (SELECT count(*) FROM private_tasks c WHERE c.job_key = o.job_key AND c.object_id = o.object_id
         AND c.state IN ('active', 'submitted')) < j.workers_per_object
    AND NOT EXISTS (SELECT 1 FROM private_tasks s WHERE s.job_key = o.job_key AND s.object_id = o.object_id
                    AND s.worker_name = :worker)"""
_OUT = """SELECT count(DISTINCT object_id) FROM private_tasks WHERE job_key = ? AND state = 'active'"""
_IS_OUT = """EXISTS (SELECT 1 FROM private_tasks a WHERE a.job_key = o.job_key AND a.object_id = o.object_id
    AND a.state = 'active')"""


def _task(row: sqlite3.Row) -> Task:
    return Task(**dict(row))


class TaskQueue:
    """The private tasks in the service's SQLite file."""

    def __init__(self, db: StateDb) -> None:
        self.db = db

    # The engine's side.

    def open_job(self, job: PrivateJob) -> None:
        """Record (or, for a resumed job, refresh) the job's settings."""
        with self.db.transaction() as db:
            db.execute(
                "INSERT INTO private_jobs VALUES (:job_key, :job_name, :workteam_arn, :title, :description,"
                " :workers_per_object, :max_concurrent_tasks, :task_time_limit_s, :labels, :template_uri)"
                " ON CONFLICT (job_key) DO UPDATE SET job_name = excluded.job_name,"
                " workteam_arn = excluded.workteam_arn, title = excluded.title,"
                " description = excluded.description, workers_per_object = excluded.workers_per_object,"
                " max_concurrent_tasks = excluded.max_concurrent_tasks,"
                " task_time_limit_s = excluded.task_time_limit_s, labels = excluded.labels,"
                " template_uri = excluded.template_uri",
                {
                    "job_key": job.job_key,
                    "job_name": job.job_name,
                    "workteam_arn": job.workteam_arn,
                    "title": job.title,
                    "description": job.description,
                    "workers_per_object": job.workers_per_object,
                    "max_concurrent_tasks": job.max_concurrent_tasks,
                    "task_time_limit_s": job.task_time_limit_s,
                    "labels": json.dumps(list(job.labels)),
                    "template_uri": job.template_uri,
                },
            )

    def offer(self, job_name: str, objects: Iterable[ObjectToLabel], lifetime_s: float, now: float) -> None:
        """Put objects in the queue; an object offered before (by an interrupted run) keeps its clock."""
        with self.db.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO private_objects VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open')",
                [
                    (
                        job_name.lower(),
                        item.object_id,
                        item.iteration,
                        item.source_ref,
                        item.width,
                        item.height,
                        now,
                        now + lifetime_s,
                        # Lifetime counts from the first offer; a resumed run re-offers with the same clock.
                    )
                    for item in objects
                ],
            )

    def object_states(self, job_name: str, object_ids: Sequence[int]) -> dict[int, tuple[str, float]]:
        """Each offered object's state and the time it expires."""
        rows = self.db.connection().execute(
            "SELECT object_id, state, expires_at FROM private_objects WHERE job_key = ?",
            (job_name.lower(),),
        )
        wanted = set(object_ids)
        return {row[0]: (row[1], row[2]) for row in rows if row[0] in wanted}

    def answers(self, job_name: str, object_ids: Sequence[int]) -> dict[int, list[SubmittedAnswer]]:
        """The submitted answers of each object, in the order they were submitted."""
        found: dict[int, list[SubmittedAnswer]] = {object_id: [] for object_id in object_ids}
        rows = self.db.connection().execute(
            "SELECT object_id, worker_name, worker_id, worker_sub, assigned_at, ended_at, answer"
            " FROM private_tasks WHERE job_key = ? AND state = 'submitted' ORDER BY ended_at, id",
            (job_name.lower(),),
        )
        for row in rows:
            if row[0] in found:
                found[row[0]].append(
                    SubmittedAnswer(row[1], row[2], row[3], row[4], row[5], json.loads(row[6]))
                )
        return found

    def close_objects(self, job_name: str, object_ids: Sequence[int], state: str, now: float) -> None:
        """Take objects out of the queue (done, expired or withdrawn); their tasks in progress end."""
        if state not in OBJECT_STATES - {"open"}:
            raise ValueError(f"objects close as done, expired or withdrawn, not {state!r}")
        key = job_name.lower()
        with self.db.transaction() as db:
            for object_id in object_ids:
                db.execute(
                    "UPDATE private_objects SET state = ? WHERE job_key = ? AND object_id = ?",
                    (state, key, object_id),
                )
                db.execute(
                    "UPDATE private_tasks SET state = 'withdrawn', ended_at = ?"
                    " WHERE job_key = ? AND object_id = ? AND state = 'active'",
                    (now, key, object_id),
                )

    # The portal's side.

    def expire_tasks(self, db: sqlite3.Connection, now: float) -> None:
        """Tasks past their time limit go back to the queue (called inside the portal's transactions)."""
        db.execute(
            "UPDATE private_tasks SET state = 'expired', ended_at = deadline"
            " WHERE state = 'active' AND deadline <= ?",
            (now,),
        )

    def jobs_for(self, worker_name: str, now: float) -> list[JobOffer]:
        """The InProgress jobs of the worker's teams, with what the worker could take now."""
        params = {"worker": worker_name, "now": now}
        offers = []
        with self.db.transaction() as db:
            self.expire_tasks(db, now)
            jobs = db.execute(
                "SELECT j.job_key, j.job_name, j.title, j.description, j.max_concurrent_tasks,"
                " (SELECT a.id FROM private_tasks a WHERE a.job_key = j.job_key AND a.worker_name = :worker"
                "  AND a.state = 'active') AS active_task_id"
                f" FROM {_WORKERS_JOBS} GROUP BY j.job_key ORDER BY l.creation_time, j.job_name",
                params,
            ).fetchall()
            for key, name, title, description, max_concurrent, active_task_id in jobs:
                waiting = db.execute(
                    f"SELECT count(*) FROM private_objects o JOIN private_jobs j ON j.job_key = o.job_key"
                    f" WHERE j.job_key = :job AND {_TAKEABLE}{self._room(db, key, max_concurrent)}",
                    {**params, "job": key},
                ).fetchone()[0]
                offers.append(JobOffer(name, title, description, waiting, active_task_id))
        return offers

    @staticmethod
    def _room(db: sqlite3.Connection, job_key: str, max_concurrent: int) -> str:
        """The condition on the objects a worker may take: any while fewer than MaxConcurrentTaskCount are
        out, else only those already out (a second worker on an object out does not put another out)."""
        out = db.execute(_OUT, (job_key,)).fetchone()[0]
        return "" if out < max_concurrent else f" AND {_IS_OUT}"

    def job_for(self, worker_name: str, job_name: str) -> PrivateJob | None:
        """The job, if it is InProgress for one of the worker's teams."""
        row = (
            self.db.connection()
            .execute(
                f"SELECT j.* FROM {_WORKERS_JOBS} WHERE j.job_key = :job LIMIT 1",
                {"worker": worker_name, "job": job_name.lower()},
            )
            .fetchone()
        )
        return None if row is None else PrivateJob.from_row(row)

    def next_task(self, worker_name: str, job_name: str, now: float) -> Task | None:
        """The worker's task in progress in the job, else a new one, else None when nothing is waiting."""
        params = {"worker": worker_name, "now": now, "job": job_name.lower()}
        with self.db.transaction() as db:
            self.expire_tasks(db, now)
            job = db.execute(
                "SELECT j.job_key, j.task_time_limit_s, j.max_concurrent_tasks"
                f" FROM {_WORKERS_JOBS} WHERE j.job_key = :job",
                params,
            ).fetchone()
            if job is None:
                return None
            held = db.execute(
                f"SELECT {_TASK_COLUMNS} FROM {_TASK_FROM}"
                " WHERE t.job_key = :job AND t.worker_name = :worker AND t.state = 'active'",
                params,
            ).fetchone()
            if held is not None:
                return _task(held)
            chosen = db.execute(
                f"SELECT o.object_id FROM private_objects o JOIN private_jobs j ON j.job_key = o.job_key"
                f" WHERE j.job_key = :job AND {_TAKEABLE}{self._room(db, job[0], job[2])}"
                " ORDER BY o.iteration, o.object_id LIMIT 1",
                params,
            ).fetchone()
            if chosen is None:
                return None
            account = db.execute(
                "SELECT worker_id, sub FROM worker_accounts WHERE name = ?", (worker_name,)
            ).fetchone()
            if account is None:
                return None
            cursor = db.execute(
                "INSERT INTO private_tasks (job_key, object_id, worker_name, worker_id, worker_sub,"
                " assigned_at, deadline, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'active')",
                (job[0], chosen[0], worker_name, account[0], account[1], now, now + job[1]),
            )
            row = db.execute(
                f"SELECT {_TASK_COLUMNS} FROM {_TASK_FROM} WHERE t.id = ?", (cursor.lastrowid,)
            ).fetchone()
        return _task(row)

    def task_for(self, worker_name: str, task_id: int, now: float) -> Task:
        """The worker's own task in progress; TaskUnavailable for anyone else's, an ended or unknown one."""
        with self.db.transaction() as db:
            self.expire_tasks(db, now)
            return self._held(db, worker_name, task_id)

    def submit(self, worker_name: str, task_id: int, answer: Mapping[str, Any], now: float) -> Task:
        """Store the worker's answer to their task in progress (the answer is checked by the caller)."""
        with self.db.transaction() as db:
            self.expire_tasks(db, now)
            task = self._held(db, worker_name, task_id)
            db.execute(
                "UPDATE private_tasks SET state = 'submitted', ended_at = ?, answer = ? WHERE id = ?",
                (now, json.dumps(answer), task.id),
            )
        return task

    def give_back(self, worker_name: str, task_id: int, how: str, now: float) -> Task:
        """Skip or release the worker's task in progress: its object goes back to the queue for others."""
        if how not in GIVEN_BACK:
            raise ValueError(f"a task is given back as skipped or released, not {how!r}")
        with self.db.transaction() as db:
            self.expire_tasks(db, now)
            task = self._held(db, worker_name, task_id)
            db.execute("UPDATE private_tasks SET state = ?, ended_at = ? WHERE id = ?", (how, now, task.id))
        return task

    def _held(self, db: sqlite3.Connection, worker_name: str, task_id: int) -> Task:
        row = db.execute(
            f"SELECT {_TASK_COLUMNS}, l.status,"
            " EXISTS (SELECT 1 FROM workteams w JOIN team_members m ON m.team_key = w.name_key"
            "  WHERE w.arn = j.workteam_arn AND m.worker_name = t.worker_name) AS member"
            f" FROM {_TASK_FROM} JOIN labeling_jobs l ON l.name_key = t.job_key"
            " WHERE t.id = ? AND t.worker_name = ?",
            (task_id, worker_name),
        ).fetchone()
        if row is None:
            raise TaskUnavailable("There is no such task among yours.")
        values = dict(row)
        status, member = values.pop("status"), values.pop("member")
        task = Task(**values)
        if not member:
            raise TaskUnavailable("You are no longer a member of the team this task is for.")
        if task.state == EXPIRED:
            raise TaskUnavailable("The task's time limit ran out, and it went back to the queue.")
        if task.state == WITHDRAWN or status != "InProgress":
            raise TaskUnavailable("The labeling job no longer needs this task.")
        if task.state != ACTIVE:
            raise TaskUnavailable(f"The task was already {task.state}.")
        return task
