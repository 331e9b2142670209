"""The simulated public crowd: reproducible workers with individual skill, and the errors they make."""

from __future__ import annotations

import re

import numpy as np
import pytest

from local_aws.boxes import iou_matrix
from local_aws.groundtruth.crowd import MAX_BOXES_CAP, POPULATION_SIZE, Crowd, Target, targets_of
from local_aws.reference_index import ReferenceBox, ReferenceImage

SIZE = (800, 600)
LABELS = ["Bird"]
TIME_LIMIT = 300


def _answers(crowd: Crowd, targets: list[Target], objects: range, workers: int = 5, **kwargs):
    return [
        crowd.answer(
            worker, object_id, targets, kwargs.get("labels", LABELS), SIZE, kwargs.get("limit", TIME_LIMIT)
        )
        for object_id in objects
        for worker in crowd.assign(object_id, workers)
    ]


def _hit_rate(crowd: Crowd, target: Target, objects: range) -> float:
    hits = [
        any(iou_matrix(np.array([b.xyxy]), np.array([target.xyxy]))[0, 0] >= 0.5 for b in answer.boxes)
        for answer in _answers(crowd, [target], objects)
    ]
    return float(np.mean(hits))


def test_the_crowd_is_reproducible_from_the_job_name():
    first, again = Crowd("birds-2026-11-26", "us-east-1"), Crowd("birds-2026-11-26", "us-east-1")
    assert first.workers == again.workers
    assert len(first.workers) == POPULATION_SIZE
    assert len({w.worker_id for w in first.workers}) == POPULATION_SIZE
    targets = [Target("Bird", (100, 100, 220, 190)), Target("Bird", (400, 300, 470, 350))]
    assert _answers(first, targets, range(20)) == _answers(again, targets, range(20))


def test_another_job_name_gives_another_crowd():
    one, other = Crowd("job-one", "us-east-1"), Crowd("job-two", "us-east-1")
    assert {w.worker_id for w in one.workers}.isdisjoint(w.worker_id for w in other.workers)
    assert [w.skill for w in one.workers] != [w.skill for w in other.workers]
    targets = [Target("Bird", (100, 100, 220, 190))]
    boxes = [a.boxes for a in _answers(one, targets, range(10))]
    assert boxes != [a.boxes for a in _answers(other, targets, range(10))]


def test_workers_differ_in_skill():
    skills = [w.skill for w in Crowd("skills", "us-east-1").workers]
    jitter = [s.jitter for s in skills]
    assert max(jitter) > 2 * min(jitter)
    assert {s.max_boxes for s in skills} == set(range(8, MAX_BOXES_CAP + 1))


def test_worker_ids_look_like_the_public_crowd_of_the_region():
    crowd = Crowd("ids", "eu-west-1")
    assert all(re.fullmatch(r"public\.eu-west-1\.A[0-9A-Z]{13}", w.worker_id) for w in crowd.workers)


def test_an_object_gets_distinct_workers():
    crowd = Crowd("assign", "us-east-1")
    for object_id in range(50):
        picked = crowd.assign(object_id, 9)
        assert len(set(picked)) == 9
    assert crowd.assign(3, 5) == crowd.assign(3, 5)
    with pytest.raises(ValueError, match="1 to 64 workers"):
        crowd.assign(0, 0)


def test_small_objects_are_missed_more_often():
    crowd = Crowd("misses", "us-east-1")
    small = _hit_rate(crowd, Target("Bird", (300, 300, 312, 311)), range(200))
    large = _hit_rate(crowd, Target("Bird", (300, 200, 450, 330)), range(200))
    assert large > 0.9
    assert small < large - 0.2


def test_boxes_are_jittered_but_close():
    crowd = Crowd("jitter", "us-east-1")
    target = Target("Bird", (200, 150, 360, 270))
    ious = [
        iou_matrix(np.array([answer.boxes[0].xyxy]), np.array([target.xyxy]))[0, 0]
        for answer in _answers(crowd, [target], range(100))
        if len(answer.boxes) == 1
    ]
    assert 0.75 < np.mean(ious) < 0.99
    assert np.std(ious) > 0.01


def test_spurious_boxes_are_rare_but_happen():
    answers = _answers(Crowd("spurious", "us-east-1"), [], range(200))
    per_answer = np.mean([len(a.boxes) for a in answers])
    assert 0.0 < per_answer < 0.3


def test_a_cluster_of_small_close_objects_is_sometimes_boxed_as_one():
    birds = [Target("Bird", (100 + 32 * i, 100, 128 + 32 * i, 124)) for i in range(6)]
    union = np.array([[100, 100, 288, 124]], dtype=float)
    answers = _answers(Crowd("flock", "us-east-1"), birds, range(100))
    grouped = [a for a in answers if any(iou_matrix(np.array([b.xyxy]), union)[0, 0] > 0.7 for b in a.boxes)]
    assert 0 < len(grouped) < len(answers) / 2


def test_a_group_of_reference_box_is_drawn_as_one_box():
    group = Target("Bird", (100, 100, 400, 300), is_group=True)
    answers = _answers(Crowd("group", "us-east-1"), [group], range(50))
    drawn = [
        b
        for a in answers
        for b in a.boxes
        if iou_matrix(np.array([b.xyxy]), np.array([group.xyxy]))[0, 0] > 0.5
    ]
    assert len(drawn) >= 0.9 * len(answers)


def test_no_worker_draws_more_than_the_cap_and_the_largest_come_first():
    rng = np.random.default_rng(0)
    targets = []
    for i in range(20):
        size = 20 + 4 * i
        x, y = (i % 5) * 160 + 5, (i // 5) * 150 + 5
        targets.append(Target("Bird", (x + rng.uniform(0, 20), y, x + size * 0.8, y + size * 0.6)))
    answers = _answers(Crowd("crowded", "us-east-1"), targets, range(30))
    assert max(len(a.boxes) for a in answers) <= MAX_BOXES_CAP
    assert min(len(a.boxes) for a in answers) >= 6
    found = np.zeros(len(targets))
    for answer in answers:
        iou = iou_matrix(np.array([b.xyxy for b in answer.boxes]), np.array([t.xyxy for t in targets]))
        found += (iou >= 0.5).any(axis=0)
    assert found[-5:].mean() > 3 * found[:5].mean()


def test_boxes_are_integer_pixels_inside_the_image_with_a_job_label():
    targets = [
        Target("Bird", (-10.0, 550.4, 120.7, 600.0), is_truncated=True),
        Target("Fish", (300, 300, 420, 380)),
    ]
    for answer in _answers(Crowd("pixels", "us-east-1"), targets, range(40), labels=["Bird", "Fish"]):
        for box in answer.boxes:
            assert all(isinstance(v, int) for v in (box.left, box.top, box.width, box.height))
            assert box.left >= 0 and box.top >= 0 and box.width >= 1 and box.height >= 1
            assert box.left + box.width <= SIZE[0] and box.top + box.height <= SIZE[1]
            assert box.label in ("Bird", "Fish")


def test_task_times_stay_within_the_time_limit():
    targets = [Target("Bird", (20 + 60 * i, 20, 70 + 60 * i, 60)) for i in range(12)]
    answers = _answers(Crowd("slow", "us-east-1"), targets, range(20), limit=30)
    assert all(0 < a.seconds <= 30 for a in answers)
    assert all(a.pickup_seconds >= 0 for a in answers)


def test_targets_are_the_boxes_of_the_job_labels_and_their_subclasses():
    reference = ReferenceImage(
        "0a1b",
        400,
        300,
        (
            ReferenceBox("/m/sparrow", 0.1, 0.3, 0.2, 0.6, is_occluded=True),
            ReferenceBox("/m/bird", 0.5, 0.7, 0.1, 0.4, is_group=True),
            ReferenceBox("/m/car", 0.0, 0.5, 0.5, 1.0),
            ReferenceBox("/m/bird", 0.9, 0.9, 0.1, 0.4),  # no width: not a box
        ),
    )
    names = {"/m/sparrow": ("Sparrow", "Bird", "Animal"), "/m/bird": ("Bird", "Animal"), "/m/car": ("Car",)}
    targets = targets_of(reference, ["bird"], names, 800, 600)
    assert targets == [
        Target("bird", (80.0, 120.0, 240.0, 360.0), is_occluded=True),
        Target("bird", (400.0, 60.0, 560.0, 240.0), is_group=True),
    ]
    # With both a class and its subclass as labels, a box takes the most specific one.
    assert [t.label for t in targets_of(reference, ["Bird", "Sparrow"], names, 800, 600)] == [
        "Sparrow",
        "Bird",
    ]
    # A label that is a MID matches the box's MID; without class names only that can match.
    assert [t.label for t in targets_of(reference, ["/m/car"], {}, 800, 600)] == ["/m/car"]
