import numpy as np
import pytest

from ground_truth_pipeline import metrics
from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.metrics import (
    class_blind_image_miou,
    group_miou,
    image_confidence,
    miou_by_confidence_threshold,
    worker_miou_with_consolidated,
)

FULL_HEIGHT = (0.0, 1.0)


def strip(x0: float, x1: float) -> list[float]:
    """A box spanning the image's full height, so IoUs are ratios of x intervals."""
    return [x0, FULL_HEIGHT[0], x1, FULL_HEIGHT[1]]


def table(images: list[int], boxes: list[list[float]], scores: list[float] | None = None) -> BoxTable:
    if not images:
        return BoxTable.empty()
    return BoxTable.build(image=images, xyxy=boxes, score=scores)


def box_iou(a: list[float], b: list[float]) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


def oracle_matched_and_denominator(
    consolidated: list[tuple[list[float], float]], reference: list[list[float]]
) -> tuple[float, int]:
    """The notebook's per-image matching, written as a plain loop over boxes."""
    if not consolidated and not reference:
        return 1.0, 1
    unmatched = list(range(len(reference)))
    matched_sum = 0.0
    for box, _score in sorted(consolidated, key=lambda item: -item[1]):
        best, best_iou = None, 0.0
        for j in unmatched:
            iou = box_iou(box, reference[j])
            if iou > best_iou:
                best, best_iou = j, iou
        if best is not None:
            unmatched.remove(best)
            matched_sum += best_iou
    return matched_sum, len(consolidated) + len(unmatched)


def random_xyxy(rng: np.random.Generator, n: int, sizes: tuple[float, float] = (0.05, 0.4)) -> np.ndarray:
    """``n`` boxes of random position and a random width and height within ``sizes``, inside the image."""
    corner = rng.uniform(0, 1 - sizes[1], (n, 2))
    return np.concatenate([corner, corner + rng.uniform(*sizes, (n, 2))], axis=1)


def random_dataset(rng: np.random.Generator, n_images: int) -> tuple[BoxTable, BoxTable]:
    """Reference boxes, and consolidated boxes that jitter, drop and add to them; scores have ties."""
    n_reference = rng.integers(0, 7, n_images)
    reference_image = np.repeat(np.arange(n_images), n_reference)
    centre = rng.uniform(0.1, 0.9, (len(reference_image), 2))
    size = rng.uniform(0.05, 0.5, (len(reference_image), 2))
    reference_xyxy = np.clip(np.concatenate([centre - size / 2, centre + size / 2], axis=1), 0, 1)
    kept = rng.random(len(reference_image)) < 0.8
    jittered = np.clip(reference_xyxy[kept] + rng.normal(0, 0.05, (kept.sum(), 4)), 0, 1)
    jittered[:, 2:] = np.maximum(jittered[:, 2:], jittered[:, :2] + 0.01)
    n_extra = rng.integers(0, 3, n_images)
    extra_image = np.repeat(np.arange(n_images), n_extra)
    extra_corner = rng.uniform(0, 0.7, (len(extra_image), 2))
    extra_xyxy = np.concatenate(
        [extra_corner, extra_corner + rng.uniform(0.05, 0.3, (len(extra_image), 2))], 1
    )
    consolidated_image = np.concatenate([reference_image[kept], extra_image])
    shuffle = rng.permutation(len(consolidated_image))
    consolidated = BoxTable.build(
        image=consolidated_image[shuffle],
        xyxy=np.concatenate([jittered, extra_xyxy])[shuffle],
        score=np.round(rng.random(len(consolidated_image)), 1),
    )
    return consolidated, BoxTable.build(image=reference_image, xyxy=reference_xyxy)


def oracle_per_image(
    consolidated: BoxTable, reference: BoxTable, n_images: int
) -> tuple[np.ndarray, np.ndarray]:
    per_image_consolidated: list[list[tuple[list[float], float]]] = [[] for _ in range(n_images)]
    per_image_reference: list[list[list[float]]] = [[] for _ in range(n_images)]
    for image, box, score in zip(
        consolidated.image, consolidated.xyxy.tolist(), consolidated.score, strict=True
    ):
        per_image_consolidated[image].append((box, score))
    for image, box in zip(reference.image, reference.xyxy.tolist(), strict=True):
        per_image_reference[image].append(box)
    results = [
        oracle_matched_and_denominator(c, r)
        for c, r in zip(per_image_consolidated, per_image_reference, strict=True)
    ]
    return np.array([m for m, _ in results]), np.array([d for _, d in results], dtype=np.float64)


def test_identical_boxes_score_one() -> None:
    boxes = [[0.1, 0.2, 0.4, 0.6], [0.5, 0.5, 0.9, 0.9]]

    miou = class_blind_image_miou(table([0, 0], boxes, [0.9, 0.3]), table([0, 0], boxes), n_images=1)

    np.testing.assert_allclose(miou, [1.0])


def test_disjoint_boxes_score_zero() -> None:
    miou = class_blind_image_miou(table([0], [strip(0.0, 0.4)]), table([0], [strip(0.5, 1.0)]), n_images=1)

    np.testing.assert_array_equal(miou, [0.0])


def test_empty_sides() -> None:
    consolidated = table([0], [strip(0.0, 0.4)])
    reference = table([1], [strip(0.0, 0.4)])

    miou = class_blind_image_miou(consolidated, reference, n_images=3)

    np.testing.assert_array_equal(miou, [0.0, 0.0, 1.0])


def test_greedy_matching_takes_consolidated_boxes_by_decreasing_score() -> None:
    reference = table([0, 0], [strip(0.0, 0.4), strip(0.5, 1.0)])
    wide, narrow = strip(0.3, 0.8), strip(0.5, 0.9)

    wide_first = class_blind_image_miou(table([0, 0], [wide, narrow], [0.9, 0.1]), reference, n_images=1)
    narrow_first = class_blind_image_miou(table([0, 0], [wide, narrow], [0.1, 0.9]), reference, n_images=1)

    # Wide first takes the right box (IoU 3/7) and leaves narrow nothing: (3/7) / (2 + 1 unmatched).
    np.testing.assert_allclose(wide_first, [(3 / 7) / 3])
    # Narrow first takes the right box (IoU 0.8), then wide takes the left one (IoU 1/8): 0.925 / 2.
    np.testing.assert_allclose(narrow_first, [(0.8 + 0.125) / 2])


def test_two_box_case_with_known_value() -> None:
    consolidated = table([0, 0], [strip(0.0, 0.5), strip(0.5, 1.0)], [0.8, 0.7])
    reference = table([0, 0], [strip(0.0, 0.5), strip(0.75, 1.0)])

    np.testing.assert_allclose(class_blind_image_miou(consolidated, reference, n_images=1), [(1.0 + 0.5) / 2])


def test_unmatched_reference_boxes_enlarge_the_denominator() -> None:
    consolidated = table([0], [strip(0.0, 0.4)])
    reference = table([0, 0], [strip(0.0, 0.4), strip(0.6, 1.0)])

    np.testing.assert_allclose(class_blind_image_miou(consolidated, reference, n_images=1), [0.5])


def test_class_blind_image_miou_equals_a_per_box_loop_on_random_images() -> None:
    n_images = 3000
    consolidated, reference = random_dataset(np.random.default_rng(7), n_images)
    matched, denominator = oracle_per_image(consolidated, reference, n_images)

    miou = class_blind_image_miou(consolidated, reference, n_images)

    np.testing.assert_allclose(miou, matched / denominator, rtol=0, atol=1e-12)
    assert np.mean((miou > 0) & (miou < 1)) > 0.1


def test_matching_in_small_chunks_gives_the_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    consolidated, reference = random_dataset(np.random.default_rng(3), 200)
    whole = class_blind_image_miou(consolidated, reference, 200)

    monkeypatch.setattr(metrics, "_IOU_ENTRIES_PER_CHUNK", 50)

    np.testing.assert_array_equal(class_blind_image_miou(consolidated, reference, 200), whole)


def test_class_blind_image_miou_rejects_boxes_outside_the_dataset() -> None:
    with pytest.raises(ValueError, match=r"reference boxes reference image 2, outside 0\.\.1"):
        class_blind_image_miou(BoxTable.empty(), table([2], [strip(0.0, 1.0)]), n_images=2)


def test_image_confidence_is_the_mean_score_and_zero_without_boxes() -> None:
    consolidated = table([0, 0, 2], [strip(0, 1)] * 3, [0.2, 0.6, 0.9])

    np.testing.assert_allclose(image_confidence(consolidated, n_images=3), [0.4, 0.0, 0.9])


def test_group_miou_never_matches_boxes_of_different_images() -> None:
    box = [0.2, 0.2, 0.6, 0.6]
    consolidated = table([0], [box])
    reference = table([1], [box])

    assert group_miou(consolidated, reference, np.array([0, 1])) == 0.0


def test_group_miou_pools_matched_ious_over_denominators() -> None:
    consolidated = table([0, 1, 1, 3], [strip(0, 0.5), strip(0.0, 0.5), strip(0.5, 1.0), strip(0, 1)])
    reference = table([0, 1, 1, 3], [strip(0, 0.5), strip(0.0, 0.5), strip(0.75, 1.0), strip(0.5, 1)])
    per_image = class_blind_image_miou(consolidated, reference, n_images=4)

    pooled = group_miou(consolidated, reference, np.array([0, 1, 2]))

    np.testing.assert_allclose(per_image, [1.0, 0.75, 1.0, 0.5])
    # Image 0: 1 / 1, image 1: 1.5 / 2, image 2 (both empty): 1 / 1; image 3 is not in the group.
    assert pooled == pytest.approx(3.5 / 4)
    assert group_miou(consolidated, reference, np.array([3])) == pytest.approx(0.5)


def test_group_miou_of_an_empty_group_is_nan() -> None:
    assert np.isnan(group_miou(table([0], [strip(0, 1)]), BoxTable.empty(), np.array([], dtype=np.int64)))


def test_group_miou_rejects_repeated_images() -> None:
    with pytest.raises(ValueError, match="image 1 more than once"):
        group_miou(BoxTable.empty(), BoxTable.empty(), np.array([1, 0, 1]))


def test_group_miou_equals_the_loop_pooled_per_image() -> None:
    consolidated, reference = random_dataset(np.random.default_rng(11), 500)
    matched, denominator = oracle_per_image(consolidated, reference, 500)
    group = np.arange(0, 500, 3)

    assert group_miou(consolidated, reference, group) == pytest.approx(
        matched[group].sum() / denominator[group].sum(), abs=1e-12
    )


def test_miou_by_confidence_threshold_keeps_the_most_confident_images() -> None:
    # Image i has one consolidated box of score i / 10 whose IoU with its reference box rises with i.
    n_images = 10
    images = list(range(n_images))
    consolidated = table(images, [strip(0.0, 0.1 + 0.09 * i) for i in images], [i / 10 for i in images])
    reference = table(images, [strip(0.0, 1.0)] * n_images)
    group = np.arange(n_images)

    top_percent, values = miou_by_confidence_threshold(consolidated, reference, n_images, group)

    np.testing.assert_allclose(top_percent, np.linspace(100, 10, 10))
    # Quantile q of the confidences 0, 0.1, .., 0.9 is 0.9 q: it keeps images above it, 1..9 at q = 0.
    expected = [group_miou(consolidated, reference, group[max(i, 1) :]) for i in range(10)]
    np.testing.assert_allclose(values, expected)
    assert np.all(np.diff(values) >= 0)
    assert values[-1] == pytest.approx(class_blind_image_miou(consolidated, reference, n_images)[9])


def test_miou_by_confidence_threshold_is_nan_where_no_image_passes() -> None:
    consolidated = table([0, 1], [strip(0, 1)] * 2, [0.5, 0.5])
    reference = table([0, 1], [strip(0, 1)] * 2)

    _, values = miou_by_confidence_threshold(
        consolidated, reference, 2, np.array([0, 1]), np.array([0.0, 0.5])
    )

    assert np.isnan(values).all()


def test_miou_by_confidence_threshold_of_a_subgroup_uses_only_its_images() -> None:
    consolidated = table([0, 1, 2], [strip(0, 1)] * 3, [0.1, 0.5, 0.9])
    reference = table([0, 1], [strip(0, 1)] * 2)

    _, values = miou_by_confidence_threshold(consolidated, reference, 3, np.array([0, 2]), np.array([0.0]))

    # Within images {0, 2}, confidence > 0.1 keeps image 2 only, which has no reference box.
    np.testing.assert_array_equal(values, [0.0])


def test_miou_by_confidence_threshold_rejects_images_outside_the_dataset() -> None:
    with pytest.raises(ValueError, match=r"image_indices holds image 5, outside 0\.\.2"):
        miou_by_confidence_threshold(BoxTable.empty(), BoxTable.empty(), 3, np.array([0, 5]))


def test_tied_scores_are_taken_in_table_order_even_when_images_interleave() -> None:
    whole, half = strip(0.0, 0.5), strip(0.0, 0.25)
    reference = table([0, 1], [strip(0.0, 0.5), strip(0.0, 1.0)])

    whole_first = class_blind_image_miou(
        table([0, 1, 0], [whole, whole, half], [0.5, 0.9, 0.5]), reference, n_images=2
    )
    half_first = class_blind_image_miou(
        table([0, 1, 0], [half, whole, whole], [0.5, 0.9, 0.5]), reference, n_images=2
    )

    # Image 0: the first of the two tied boxes takes the one reference box, the other matches nothing.
    np.testing.assert_allclose(whole_first, [1.0 / 2, 0.5])
    np.testing.assert_allclose(half_first, [0.5 / 2, 0.5])


def test_tied_ious_take_the_earlier_reference_box() -> None:
    # The middle box overlaps both reference boxes by exactly 1/3; the narrow box overlaps only the left one.
    middle, narrow = strip(0.25, 0.75), strip(0.0, 0.4)
    left, right = strip(0.0, 0.5), strip(0.5, 1.0)
    consolidated = table([0, 0], [middle, narrow], [0.9, 0.1])

    left_first = class_blind_image_miou(consolidated, table([0, 0], [left, right]), n_images=1)
    right_first = class_blind_image_miou(consolidated, table([0, 0], [right, left]), n_images=1)

    # Left first: the middle box takes it and the narrow box is left without a match.
    np.testing.assert_allclose(left_first, [(1 / 3) / 3])
    np.testing.assert_allclose(right_first, [(1 / 3 + 0.8) / 2])


def test_images_alone_in_their_bucket_and_images_with_an_empty_side() -> None:
    # Every image has its own pair of box counts, so every bucket holds a single image.
    rng = np.random.default_rng(5)
    n_consolidated = np.array([0, 0, 3, 1, 4, 2, 5])
    n_reference = np.array([0, 2, 0, 3, 1, 5, 2])
    consolidated_image = np.repeat(np.arange(7), n_consolidated)
    reference_image = np.repeat(np.arange(7), n_reference)
    consolidated = BoxTable.build(
        image=consolidated_image,
        xyxy=random_xyxy(rng, len(consolidated_image), sizes=(0.4, 0.7)),
        score=rng.random(len(consolidated_image)),
    )
    reference = BoxTable.build(image=reference_image, xyxy=random_xyxy(rng, len(reference_image), (0.4, 0.7)))
    matched, denominator = oracle_per_image(consolidated, reference, 7)

    miou = class_blind_image_miou(consolidated, reference, 7)

    np.testing.assert_allclose(miou, matched / denominator, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(miou[:3], [1.0, 0.0, 0.0])
    assert np.all((miou[3:] > 0) & (miou[3:] < 1))


@pytest.mark.parametrize("iou_entries_per_chunk", [50, 1 << 17])
def test_an_image_with_two_hundred_boxes_a_side_equals_the_loop(
    monkeypatch: pytest.MonkeyPatch, iou_entries_per_chunk: int
) -> None:
    monkeypatch.setattr(metrics, "_IOU_ENTRIES_PER_CHUNK", iou_entries_per_chunk)
    rng = np.random.default_rng(13)
    small_consolidated, small_reference = random_dataset(rng, 30)
    many_reference = BoxTable.build(image=np.full(200, 30), xyxy=random_xyxy(rng, 200))
    many_consolidated = BoxTable.build(
        image=np.full(200, 30),
        xyxy=np.clip(many_reference.xyxy[::-1] + rng.normal(0, 0.02, (200, 4)), 0, 1),
        score=np.round(rng.random(200), 1),
    )
    consolidated = BoxTable.concat([many_consolidated, small_consolidated])
    reference = BoxTable.concat([small_reference, many_reference])
    matched, denominator = oracle_per_image(consolidated, reference, 31)

    miou = class_blind_image_miou(consolidated, reference, 31)

    np.testing.assert_allclose(miou, matched / denominator, rtol=0, atol=1e-12)
    assert 0.5 < miou[30] < 1.0


def worker_table(images: list[int], workers: list[int], boxes: list[list[float]]) -> BoxTable:
    return BoxTable.build(image=images, xyxy=np.reshape(boxes, (-1, 4)), worker=workers)


def test_worker_agreement_is_the_mean_miou_of_the_image_workers_with_the_consolidated_boxes() -> None:
    consolidated = table([0, 0, 2], [strip(0.0, 0.5), strip(0.5, 1.0), strip(0.0, 0.5)])
    workers = worker_table(
        [0, 0, 0, 2, 1],
        [0, 0, 1, 1, 0],
        [strip(0.0, 0.5), strip(0.5, 1.0), strip(0.0, 0.25), strip(0.0, 0.25), strip(0.0, 1.0)],
    )
    agreement = worker_miou_with_consolidated(workers, consolidated, 4)
    # Image 0: worker 0 drew both boxes (1.0); worker 1 half of one, missing the other (0.5 / 2 = 0.25).
    # Image 1: a box where the label has none (0). Image 2: half a box (0.5). Image 3: no worker drew.
    np.testing.assert_allclose(agreement[:3], [0.625, 0.0, 0.5])
    assert np.isnan(agreement[3])


def test_worker_agreement_equals_the_per_box_loop_for_each_worker_on_random_images() -> None:
    rng = np.random.default_rng(7)
    n_images = 60
    consolidated, _ = random_dataset(rng, n_images)
    drawn = [
        (image, int(worker), box)
        for image in range(n_images)
        for worker in rng.choice(6, size=rng.integers(0, 4), replace=False)
        for box in random_xyxy(rng, int(rng.integers(1, 4))).tolist()
    ]
    drawn = [drawn[i] for i in rng.permutation(len(drawn))]  # the table interleaves images and workers
    workers = worker_table([d[0] for d in drawn], [d[1] for d in drawn], [d[2] for d in drawn])
    expected = np.full(n_images, np.nan)
    for image in range(n_images):
        label = consolidated.xyxy[consolidated.image == image].tolist()
        per_worker = []
        for worker in sorted({w for i, w, _ in drawn if i == image}):
            boxes = [(box, 1.0) for i, w, box in drawn if i == image and w == worker]
            matched, denominator = oracle_matched_and_denominator(boxes, label)
            per_worker.append(matched / denominator)
        if per_worker:
            expected[image] = np.mean(per_worker)
    np.testing.assert_allclose(worker_miou_with_consolidated(workers, consolidated, n_images), expected)
