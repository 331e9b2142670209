"""The task queue as the portal uses it: one write transaction at a time in this process, in turn.

Every hand-out and submit is a ``BEGIN IMMEDIATE`` transaction. When several of the portal's threads ask for
SQLite's write lock at once, SQLite's busy handler makes the losers sleep and poll, with no order among
them, so under a few concurrent workers some requests starve for seconds while others get the lock again
and again. Taking a lock of the process first makes the threads wait their turn without polling; SQLite's
lock then only arbitrates between processes (the portal and the labeling engine), where it is rarely
contended.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from local_aws.workforce.task_queue import JobOffer, PrivateJob, Task, TaskQueue


class SerialQueue:
    """``TaskQueue``'s portal side, its writes taken in turn under ``lock``."""

    def __init__(self, queue: TaskQueue, lock: threading.Lock) -> None:
        self._queue = queue
        self._lock = lock

    def jobs_for(self, worker_name: str, now: float) -> list[JobOffer]:
        with self._lock:
            return self._queue.jobs_for(worker_name, now)

    def job_for(self, worker_name: str, job_name: str) -> PrivateJob | None:
        return self._queue.job_for(worker_name, job_name)  # a read: WAL lets it run beside a write

    def next_task(self, worker_name: str, job_name: str, now: float) -> Task | None:
        with self._lock:
            return self._queue.next_task(worker_name, job_name, now)

    def task_for(self, worker_name: str, task_id: int, now: float) -> Task:
        with self._lock:
            return self._queue.task_for(worker_name, task_id, now)

    def submit(self, worker_name: str, task_id: int, answer: Mapping[str, Any], now: float) -> Task:
        with self._lock:
            return self._queue.submit(worker_name, task_id, answer, now)

    def give_back(self, worker_name: str, task_id: int, how: str, now: float) -> Task:
        with self._lock:
            return self._queue.give_back(worker_name, task_id, how, now)
