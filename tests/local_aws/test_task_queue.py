"""The private tasks' queue keeps AWS's rules, whoever asks and in whatever order.

Each test opens a job of its own with a few objects, then acts as the portal does for several workers, at
times it chooses (the queue takes ``now`` from its caller), so time limits are tested without waiting.
"""

from __future__ import annotations

import pytest

from local_aws.config import LocalAwsConfig
from local_aws.sagemaker_service.store import StateDb
from local_aws.workforce.task_queue import ObjectToLabel, PrivateJob, TaskQueue, TaskUnavailable
from tests.local_aws.private_team_fixtures import add_team, answer, end_job, start_job

T0 = 1_000_000.0  # the queue compares only the times it is given
JOB = "private-job"


@pytest.fixture
def config(tmp_path) -> LocalAwsConfig:
    return LocalAwsConfig(data_dir=tmp_path)


@pytest.fixture
def db(config) -> StateDb:
    return StateDb(config.state_db)


def _open(
    db: StateDb,
    config: LocalAwsConfig,
    *,
    objects: int = 3,
    workers_per_object: int = 2,
    max_concurrent: int = 10,
    time_limit_s: int = 300,
    lifetime_s: float = 3600,
) -> TaskQueue:
    arn = add_team(db, config, "team-a", ["ann", "bob", "cat"])
    add_team(db, config, "team-b", ["dan"])
    start_job(db, config, {"LabelingJobName": JOB, "HumanTaskConfig": {"WorkteamArn": arn}})
    queue = TaskQueue(db)
    queue.open_job(
        PrivateJob(
            JOB, arn, "Box birds", "", workers_per_object, max_concurrent, time_limit_s, ("Bird",), "s3://b/t"
        )
    )
    queue.offer(
        JOB,
        [ObjectToLabel(i, 1, f"s3://b/{i}.jpg", 100, 80) for i in range(objects)],
        lifetime_s,
        T0,
    )
    return queue


def _submit(queue: TaskQueue, worker: str, at: float) -> int:
    task = queue.next_task(worker, JOB, at)
    assert task is not None, f"{worker} got no task"
    queue.submit(worker, task.id, answer([("Bird", 1, 1, 10, 10)], 100, 80), at)
    return task.object_id


def test_each_object_gets_its_number_of_different_workers_and_no_worker_twice(db, config) -> None:
    queue = _open(db, config, objects=2, workers_per_object=2)
    done = {
        worker: [_submit(queue, worker, T0 + 1), _submit(queue, worker, T0 + 2)] for worker in ("ann", "bob")
    }
    assert done == {"ann": [0, 1], "bob": [0, 1]}
    assert queue.next_task("cat", JOB, T0 + 3) is None  # both objects have their two answers
    assert queue.next_task("ann", JOB, T0 + 3) is None
    answers = queue.answers(JOB, [0, 1])
    assert [[a.worker_name for a in answers[i]] for i in (0, 1)] == [["ann", "bob"], ["ann", "bob"]]
    assert answers[0][0].worker_id == f"private.{config.region}.annid"


def test_a_worker_holds_one_task_per_job_and_gets_the_same_one_back(db, config) -> None:
    queue = _open(db, config)
    first = queue.next_task("ann", JOB, T0)
    again = queue.next_task("ann", JOB, T0 + 5)
    assert first is not None and again == first


def test_at_most_max_concurrent_objects_are_out_at_a_time(db, config) -> None:
    queue = _open(db, config, objects=3, workers_per_object=1, max_concurrent=2)
    held = [queue.next_task(worker, JOB, T0) for worker in ("ann", "bob")]
    assert [task.object_id for task in held if task] == [0, 1]
    assert queue.next_task("cat", JOB, T0) is None
    assert [offer.waiting for offer in queue.jobs_for("cat", T0)] == [0]
    queue.submit("ann", held[0].id, answer([], 100, 80), T0 + 1)
    assert queue.next_task("cat", JOB, T0 + 1).object_id == 2


def test_an_object_out_with_one_worker_may_go_to_another_despite_the_limit(db, config) -> None:
    queue = _open(db, config, objects=2, workers_per_object=2, max_concurrent=1)
    assert queue.next_task("ann", JOB, T0).object_id == 0
    assert queue.next_task("bob", JOB, T0).object_id == 0  # the same object: it is already out
    assert queue.next_task("cat", JOB, T0) is None  # object 0 is full, object 1 would be a second one out


def test_a_task_past_its_time_limit_goes_to_someone_else_and_cannot_be_submitted(db, config) -> None:
    queue = _open(db, config, objects=1, workers_per_object=1, time_limit_s=60)
    late = queue.next_task("ann", JOB, T0)
    assert queue.next_task("bob", JOB, T0 + 59) is None
    taken = queue.next_task("bob", JOB, T0 + 60)
    assert taken is not None and taken.object_id == late.object_id
    with pytest.raises(TaskUnavailable, match="time limit ran out"):
        queue.submit("ann", late.id, answer([], 100, 80), T0 + 61)
    assert queue.next_task("ann", JOB, T0 + 200) is None  # never the same image twice


def test_skipped_and_released_tasks_go_back_to_others_only(db, config) -> None:
    queue = _open(db, config, objects=1, workers_per_object=1)
    skipped = queue.next_task("ann", JOB, T0)
    queue.give_back("ann", skipped.id, "skipped", T0 + 1)
    released = queue.next_task("bob", JOB, T0 + 2)
    queue.give_back("bob", released.id, "released", T0 + 3)
    assert queue.next_task("ann", JOB, T0 + 4) is None
    assert queue.next_task("bob", JOB, T0 + 4) is None
    assert queue.next_task("cat", JOB, T0 + 4).object_id == 0


def test_a_worker_acts_only_on_their_own_task(db, config) -> None:
    queue = _open(db, config)
    task = queue.next_task("ann", JOB, T0)
    for act in (
        lambda: queue.task_for("bob", task.id, T0),
        lambda: queue.submit("bob", task.id, answer([], 100, 80), T0),
        lambda: queue.give_back("bob", task.id, "skipped", T0),
        lambda: queue.task_for("ann", task.id + 1000, T0),
    ):
        with pytest.raises(TaskUnavailable, match="no such task"):
            act()
    queue.submit("ann", task.id, answer([], 100, 80), T0)
    with pytest.raises(TaskUnavailable, match="already submitted"):
        queue.submit("ann", task.id, answer([], 100, 80), T0)


def test_another_teams_worker_sees_nothing_of_the_job(db, config) -> None:
    queue = _open(db, config)
    assert queue.jobs_for("dan", T0) == []
    assert queue.job_for("dan", JOB) is None
    assert queue.next_task("dan", JOB, T0) is None
    assert [offer.job_name for offer in queue.jobs_for("ann", T0)] == [JOB]


def test_objects_past_their_lifetime_and_jobs_no_longer_in_progress_are_not_offered(db, config) -> None:
    queue = _open(db, config, lifetime_s=100)
    assert queue.next_task("ann", JOB, T0 + 100) is None
    held = queue.next_task("bob", JOB, T0 + 50)
    end_job(db, JOB, "Stopping")
    assert queue.jobs_for("cat", T0 + 51) == []
    with pytest.raises(TaskUnavailable, match="no longer needs"):
        queue.submit("bob", held.id, answer([], 100, 80), T0 + 52)


def test_closing_an_object_withdraws_its_tasks_in_progress(db, config) -> None:
    queue = _open(db, config, objects=1)
    held = queue.next_task("ann", JOB, T0)
    queue.close_objects(JOB, [0], "withdrawn", T0 + 1)
    with pytest.raises(TaskUnavailable, match="no longer needs"):
        queue.submit("ann", held.id, answer([], 100, 80), T0 + 2)
    assert queue.next_task("bob", JOB, T0 + 2) is None


def test_offering_again_keeps_the_first_offer_and_its_answers(db, config) -> None:
    queue = _open(db, config, objects=1, workers_per_object=2, lifetime_s=100)
    _submit(queue, "ann", T0 + 1)
    queue.offer(JOB, [ObjectToLabel(0, 1, "s3://b/0.jpg", 100, 80)], 100, T0 + 90)  # a resumed run
    assert queue.object_states(JOB, [0]) == {0: ("open", T0 + 100)}
    assert [a.worker_name for a in queue.answers(JOB, [0])[0]] == ["ann"]


def test_a_worker_who_left_the_team_can_no_longer_submit(db, config) -> None:
    queue = _open(db, config)
    held = queue.next_task("ann", JOB, T0)
    with db.transaction() as connection:
        connection.execute("DELETE FROM team_members WHERE worker_name = 'ann'")
    with pytest.raises(TaskUnavailable, match="no longer a member"):
        queue.submit("ann", held.id, answer([], 100, 80), T0 + 1)
    assert queue.jobs_for("ann", T0 + 1) == []
