"""The public crowd, simulated: workers with individual skill who box the reference objects of an image.

Each job gets its own population of ``POPULATION_SIZE`` workers, drawn reproducibly from the job's name.
A worker's skill is one sloppiness score (most workers are careful, a few are not) spread over the kinds of
error real annotators make, each with some individual variation:

- edge jitter, with a standard deviation that is a fraction of the box's width or height (plus half a
  pixel of hand precision), and a systematic looseness (boxes drawn a little outside the object);
- misses, whose probability rises steeply for small objects and for occluded ones;
- spurious boxes where there is no object of the job's labels;
- one box around a cluster of close objects instead of one box each (an ``IsGroupOf`` reference box is
  itself such a box, and is drawn as one, with extra jitter since a group's extent is vague);
- sloppiness with partly hidden objects: a box stretched over the hidden part of an occluded object, or
  stopping short of the image edge where an object is truncated by it;
- a cap of 8 to 12 boxes per image, drawing the largest and clearest objects first, as the instructions ask;
- with several labels, now and then the wrong one.

A task's randomness comes from the job, the object and the worker alone, so the answers do not depend on
the order or the threads in which tasks run.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from local_aws.boxes import PixelBox, pixel_box
from local_aws.reference_index import ReferenceImage

POPULATION_SIZE = 64
MAX_BOXES_CAP = 12
# How many boxes short of MAX_BOXES_CAP a worker stops (0 to 4): most box up to 10-12 objects, some only
# the 8 the instructions ask for at least.
_CAP_SHORTFALL = (0.4, 0.25, 0.15, 0.1, 0.1)
# Objects whose size (square root of the area) is around this many pixels are easily overlooked.
SMALL_OBJECT_PIXELS = 20.0
# Clusters of objects smaller than this fraction of the image's size may be boxed as one.
GROUPABLE_FRACTION = 0.2
_WORKER_ID_CHARS = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
# Streams of the job's random numbers, kept apart so that one does not shift another.
_POPULATION, _ASSIGNMENT, _ANSWER = 0, 1, 2


@dataclass(frozen=True)
class Target:
    """An object the job asks workers to box: its reference box in pixels and what makes it hard."""

    label: str
    xyxy: tuple[float, float, float, float]
    is_group: bool = False
    is_occluded: bool = False
    is_truncated: bool = False

    @property
    def size(self) -> float:
        return math.sqrt(max(self.xyxy[2] - self.xyxy[0], 0.0) * max(self.xyxy[3] - self.xyxy[1], 0.0))


@dataclass(frozen=True)
class WorkerSkill:
    jitter: float  # sd of each edge, as a fraction of the box's width or height
    looseness: float  # systematic outward shift of each edge, same unit
    miss: float  # probability of overlooking a large, clear object
    small_miss: float  # added miss probability of a tiny object, fading with its size
    spurious_rate: float  # mean number of boxes per image where no object of the job's labels is
    group_tendency: float  # probability of one box around a cluster of close objects
    partial_sloppiness: float  # probability of mishandling an occluded or truncated object
    wrong_label: float  # probability of picking another of the job's labels
    max_boxes: int
    seconds_per_box: float
    setup_seconds: float


@dataclass(frozen=True)
class SimulatedWorker:
    worker_id: str
    skill: WorkerSkill


@dataclass(frozen=True)
class WorkerAnswer:
    worker_id: str
    boxes: list[PixelBox]
    pickup_seconds: float  # from the moment the task is offered until the worker accepts it
    seconds: float  # timeSpentInSeconds


def job_seed(job_name: str) -> int:
    return int.from_bytes(hashlib.sha256(job_name.encode("utf-8")).digest()[:8], "big")


def targets_of(
    reference: ReferenceImage,
    categories: Sequence[str],
    class_names: Mapping[str, Sequence[str]],
    image_width: int,
    image_height: int,
) -> list[Target]:
    """The reference boxes of the job's label categories, in pixels of the decoded image.

    A box answers to its MID and to the display names ``class_names`` records for that MID (its class's and
    its ancestors'), compared case-insensitively; it is labeled with the first of these that is a category,
    the most specific. Boxes of other classes are the distractors that workers leave alone.
    """
    by_name = {name.casefold(): name for name in reversed(categories)}
    targets = []
    for box in reference.boxes:
        names = (box.label, *class_names.get(box.label, ()))
        label = next((by_name[n.casefold()] for n in names if n.casefold() in by_name), None)
        x0, x1 = sorted(min(max(x, 0.0), 1.0) * image_width for x in (box.xmin, box.xmax))
        y0, y1 = sorted(min(max(y, 0.0), 1.0) * image_height for y in (box.ymin, box.ymax))
        if label is None or x1 - x0 < 1.0 or y1 - y0 < 1.0:
            continue
        xyxy = (x0, y0, x1, y1)
        targets.append(Target(label, xyxy, box.is_group, box.is_occluded, box.is_truncated))
    return targets


class Crowd:
    """The workers of one job, and the answers they give."""

    def __init__(self, job_name: str, region: str, size: int = POPULATION_SIZE) -> None:
        self.seed = job_seed(job_name)
        rng = np.random.default_rng([self.seed, _POPULATION])
        self.workers = tuple(_draw_worker(rng, region) for _ in range(size))

    def assign(self, object_id: int, count: int) -> list[int]:
        """Indices of ``count`` distinct workers who take the object's task."""
        if not 1 <= count <= len(self.workers):
            raise ValueError(f"a task needs 1 to {len(self.workers)} workers, got {count}")
        rng = np.random.default_rng([self.seed, _ASSIGNMENT, object_id])
        return rng.choice(len(self.workers), size=count, replace=False).tolist()

    def answer(
        self,
        worker_index: int,
        object_id: int,
        targets: Sequence[Target],
        labels: Sequence[str],
        image_size: tuple[int, int],
        time_limit_s: float,
    ) -> WorkerAnswer:
        """What worker ``worker_index`` draws on the object's image (``image_size``: width, height)."""
        worker = self.workers[worker_index]
        skill = worker.skill
        width, height = image_size
        rng = np.random.default_rng([self.seed, _ANSWER, object_id, worker_index])
        items = _items(targets, skill, rng, width, height)
        boxes: list[PixelBox] = []
        for item in sorted(items, key=_clarity, reverse=True):
            if len(boxes) >= skill.max_boxes:
                break
            if rng.random() < _miss_probability(skill, item):
                continue
            drawn = _drawn_corners(item, skill, rng, width, height)
            box = pixel_box(_chosen_label(item.label, labels, skill, rng), drawn, width, height)
            if box is not None:
                boxes.append(box)
        for _ in range(rng.poisson(skill.spurious_rate)):
            if len(boxes) >= skill.max_boxes:
                break
            box = _spurious_box(labels, rng, width, height)
            if box is not None:
                boxes.insert(int(rng.integers(0, len(boxes) + 1)), box)
        work = skill.setup_seconds + skill.seconds_per_box * len(boxes) * rng.lognormal(0.0, 0.25)
        seconds = min(max(work, 2.0), 0.95 * time_limit_s)
        pickup = float(rng.exponential(30.0))
        return WorkerAnswer(worker.worker_id, boxes, round(pickup, 3), round(seconds, 3))


def _draw_worker(rng: np.random.Generator, region: str) -> SimulatedWorker:
    sloppiness = rng.beta(2.0, 5.0)

    def vary(value: float, limit: float = 1.0) -> float:
        return float(min(value * rng.lognormal(0.0, 0.25), limit))

    skill = WorkerSkill(
        jitter=vary(0.015 + 0.045 * sloppiness),
        looseness=float(rng.normal(0.01, 0.01)),
        miss=vary(0.01 + 0.08 * sloppiness, 0.5),
        small_miss=vary(0.3 + 0.5 * sloppiness, 0.95),
        spurious_rate=vary(0.02 + 0.3 * sloppiness),
        group_tendency=vary(0.03 + 0.4 * sloppiness, 0.9),
        partial_sloppiness=vary(0.1 + 0.6 * sloppiness, 0.9),
        wrong_label=vary(0.005 + 0.05 * sloppiness),
        max_boxes=MAX_BOXES_CAP - int(rng.choice(5, p=_CAP_SHORTFALL)),
        seconds_per_box=float(rng.uniform(3.0, 9.0)),
        setup_seconds=float(rng.uniform(4.0, 15.0)),
    )
    suffix = "".join(rng.choice(_WORKER_ID_CHARS, 13))
    return SimulatedWorker(f"public.{region}.A{suffix}", skill)


def _clarity(target: Target) -> float:
    """How readily a worker boxes an object first: large, unoccluded, whole objects come first."""
    return target.size * (0.5 if target.is_occluded else 1.0) * (0.7 if target.is_truncated else 1.0)


def _items(
    targets: Sequence[Target], skill: WorkerSkill, rng: np.random.Generator, width: int, height: int
) -> list[Target]:
    """What the worker sets out to box: the targets, with some clusters of small close objects as one box.

    Only clusters of three or more objects, each smaller than a fifth of the image, tempt a worker to draw
    one box around them; the more objects, the likelier.
    """
    small = GROUPABLE_FRACTION * math.sqrt(width * height)
    singles = [t for t in targets if not t.is_group]
    items = [t for t in targets if t.is_group]
    for cluster in _close_clusters(singles):
        members = [singles[i] for i in cluster]
        groupable = len(members) >= 3 and all(m.size < small for m in members)
        merge_probability = skill.group_tendency * (1.0 - 0.6 ** (len(members) - 2))
        if groupable and rng.random() < merge_probability:
            corners = np.array([m.xyxy for m in members])
            union = (*corners[:, :2].min(axis=0).tolist(), *corners[:, 2:].max(axis=0).tolist())
            items.append(Target(members[0].label, tuple(union), is_group=True))
        else:
            items.extend(members)
    return items


def _close_clusters(targets: Sequence[Target]) -> list[list[int]]:
    """Groups of same-label objects that touch or nearly touch (a gap under a quarter of their size)."""
    parent = list(range(len(targets)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, a in enumerate(targets):
        for j in range(i + 1, len(targets)):
            b = targets[j]
            gap_x = max(a.xyxy[0], b.xyxy[0]) - min(a.xyxy[2], b.xyxy[2])
            gap_y = max(a.xyxy[1], b.xyxy[1]) - min(a.xyxy[3], b.xyxy[3])
            if a.label == b.label and max(gap_x, gap_y) < 0.25 * (a.size + b.size) / 2:
                parent[root(j)] = root(i)
    clusters: dict[int, list[int]] = {}
    for i in range(len(targets)):
        clusters.setdefault(root(i), []).append(i)
    return list(clusters.values())


def _miss_probability(skill: WorkerSkill, item: Target) -> float:
    p = skill.miss + skill.small_miss * math.exp(-item.size / SMALL_OBJECT_PIXELS)
    if item.is_occluded:
        p *= 1.5
    return min(p, 0.98)


def _drawn_corners(
    item: Target, skill: WorkerSkill, rng: np.random.Generator, width: int, height: int
) -> np.ndarray:
    x0, y0, x1, y1 = item.xyxy
    box_w, box_h = x1 - x0, y1 - y0
    scale = np.array([box_w, box_h, box_w, box_h])
    outward = np.array([-1.0, -1.0, 1.0, 1.0])
    jitter = skill.jitter * (2.0 if item.is_group else 1.0)
    corners = np.array(item.xyxy) + outward * skill.looseness * scale + rng.normal(0.0, jitter * scale + 0.5)
    if item.is_occluded and rng.random() < skill.partial_sloppiness:
        edge = int(rng.integers(0, 4))
        corners[edge] += outward[edge] * rng.uniform(0.1, 0.3) * scale[edge]
    if item.is_truncated and rng.random() < skill.partial_sloppiness:
        at_border = np.array([x0, y0, width - x1, height - y1]) <= 0.015 * np.array([width, height] * 2)
        corners -= at_border * outward * rng.uniform(0.02, 0.08) * scale
    return corners


def _chosen_label(label: str, labels: Sequence[str], skill: WorkerSkill, rng: np.random.Generator) -> str:
    others = [other for other in labels if other != label]
    if others and rng.random() < skill.wrong_label:
        return others[int(rng.integers(0, len(others)))]
    return label


def _spurious_box(
    labels: Sequence[str], rng: np.random.Generator, width: int, height: int
) -> PixelBox | None:
    box_w, box_h = rng.uniform(0.05, 0.3) * width, rng.uniform(0.05, 0.3) * height
    x0, y0 = rng.uniform(0, width - box_w), rng.uniform(0, height - box_h)
    label = labels[int(rng.integers(0, len(labels)))]
    return pixel_box(label, np.array([x0, y0, x0 + box_w, y0 + box_h]), width, height)
