import json
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.labeling_output import (
    AutoLabelingTrainingJob,
    IterationLabels,
    LabelingOutputError,
    LabelPrices,
    iteration_summary,
    list_auto_labeling_training_jobs,
    load_labeling_dataset,
    parse_iteration_folder,
    read_auto_label_counts,
    read_consolidation_counts,
    read_worker_responses,
)
from ground_truth_pipeline.object_store import LocalObjectStore
from tests.labeling_job_tree import write_labeling_job_tree

JOB = "exp/labeling/birds-job/"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    store = LocalObjectStore(tmp_path_factory.mktemp("tree"))
    tree = write_labeling_job_tree(
        store, JOB, n_images=60, workers=3, iterations=3, auto_fraction=0.3, include_failed=True, seed=3
    )
    return store, tree


def test_generated_tree_worker_responses_are_read_in_full(generated):
    store, tree = generated
    dataset = load_labeling_dataset(store, JOB, "category", reference=None)

    assert len(dataset.images) == 60
    assert dataset.worker_ids == tree.worker_ids
    assert len(dataset.workers) == tree.worker_boxes
    human = np.zeros(60, bool)
    human[tree.human_object_ids] = True
    np.testing.assert_array_equal(dataset.human_mask, human)
    np.testing.assert_array_equal(dataset.workers.counts(60), np.where(human, 3 * tree.box_counts, 0))
    assert dataset.workers.worker.min() == 0 and dataset.workers.worker.max() == len(tree.worker_ids) - 1
    assert ((dataset.workers.xyxy >= 0) & (dataset.workers.xyxy <= 1)).all()
    assert len(dataset.reference) == 0

    # Each worker box is a small jitter of the consolidated box it copies.
    consolidated = dataset.consolidated
    for image in tree.human_object_ids[:10]:
        mine = consolidated.of_image(int(image)).xyxy
        for worker_box in dataset.workers.of_image(int(image)).xyxy:
            assert np.abs(mine - worker_box).max(axis=1).min() < 0.06


def test_generated_tree_answers_carry_iteration_and_task_time(generated):
    store, tree = generated
    identity = {i: i for i in range(60)}
    responses = read_worker_responses(store, JOB, identity, class_ids={"Bird": 0})

    assert len(responses.task_seconds) == tree.worker_answers
    np.testing.assert_array_equal(
        responses.answer_iteration, tree.object_iteration[responses.answer_object_id]
    )
    assert ((responses.task_seconds >= 5) & (responses.task_seconds <= 120)).all()
    assert set(responses.answer_object_id.tolist()) == set(tree.human_object_ids.tolist())


def test_generated_tree_counts_per_iteration(generated):
    store, tree = generated
    human = read_consolidation_counts(store, JOB, "category")
    auto = read_auto_label_counts(store, JOB, "category")

    assert {k: v.images for k, v in human.items()} == tree.human_images
    assert {k: v.boxes for k, v in human.items()} == tree.human_boxes
    assert {k: v.finished_at for k, v in human.items()} == tree.human_finished_at
    assert {k: v.images for k, v in auto.items()} == tree.auto_images
    assert {k: v.boxes for k, v in auto.items()} == tree.auto_boxes
    assert {k: v.finished_at for k, v in auto.items()} == tree.auto_finished_at
    jobs = list_auto_labeling_training_jobs(store, JOB)
    assert [(job.iteration, job.job_name) for job in jobs] == tree.training_jobs

    summary = iteration_summary(human, auto)
    assert summary["iteration"].tolist() == [1, 2, 3]
    assert summary["human_images"].sum() + summary["auto_images"].sum() == 59
    np.testing.assert_allclose(summary["human_cost"], summary["human_images"] * 0.26)


def _write_json(store, key, obj):
    store.write_bytes(key, json.dumps(obj).encode())


def _consolidation_entry(object_id, n_boxes):
    box = {"class_id": 0, "left": 1, "top": 2, "width": 3, "height": 4}
    content = {
        "category": {"image_size": [{"width": 10, "height": 10, "depth": 3}], "annotations": [box] * n_boxes},
        "category-metadata": {"objects": [{"confidence": 0.5}] * n_boxes, "human-annotated": "yes"},
    }
    return {"datasetObjectId": str(object_id), "consolidatedAnnotation": {"content": content}}


def test_consolidation_counts_use_whole_iteration_numbers_and_count_objects_once(tmp_path):
    store = LocalObjectStore(tmp_path)
    folder = JOB + "annotations/consolidated-annotation/consolidation-response/"
    _write_json(store, folder + "iteration-1/2026-11-26_10:00:00.json", [_consolidation_entry(0, 2)])
    _write_json(store, folder + "iteration-1/2026-11-26_11:30:00.json", [_consolidation_entry(1, 1)])
    _write_json(store, folder + "iteration-2/2026-11-27_09:00:00.json", [_consolidation_entry(3, 3)])
    # Object 3 comes back in iteration 10; it was counted in iteration 2 already.
    _write_json(
        store,
        folder + "iteration-10/2026-12-01_08:00:00.json",
        [_consolidation_entry(3, 3), _consolidation_entry(4, 0)],
    )

    counts = read_consolidation_counts(store, JOB, "category")

    assert list(counts) == [1, 2, 10]
    assert counts[1] == IterationLabels(1, images=2, boxes=3, finished_at=datetime(2026, 11, 26, 11, 30))
    assert counts[2] == IterationLabels(2, images=1, boxes=3, finished_at=datetime(2026, 11, 27, 9))
    assert counts[10] == IterationLabels(10, images=1, boxes=0, finished_at=datetime(2026, 12, 1, 8))


def test_consolidation_response_errors_name_the_file(tmp_path):
    store = LocalObjectStore(tmp_path)
    folder = JOB + "annotations/consolidated-annotation/consolidation-response/"
    _write_json(store, folder + "iteration-1/yesterday.json", [])
    with pytest.raises(
        LabelingOutputError, match=r"iteration-1/yesterday\.json: file name 'yesterday' is not a time"
    ):
        read_consolidation_counts(store, JOB, "category")

    store = LocalObjectStore(tmp_path / "other")
    entry = _consolidation_entry(0, 1)
    del entry["consolidatedAnnotation"]["content"]["category"]
    _write_json(store, folder + "iteration-1/2026-11-26_10:00:00.json", [entry])
    with pytest.raises(
        LabelingOutputError,
        match=r"2026-11-26_10:00:00.json: '\[0\].consolidatedAnnotation.content.category' is",
    ):
        read_consolidation_counts(store, JOB, "category")


def _auto_line(token, n_boxes, created):
    box = {"class_id": 0, "left": 5, "top": 5, "width": 20, "height": 20}
    label = {
        "category": {
            "image_size": [{"width": 100, "height": 100, "depth": 3}],
            "annotations": [box] * n_boxes,
        },
        "category-metadata": {
            "objects": [{"confidence": 0.7}] * n_boxes,
            "class-map": {"0": "Bird"},
            "type": "groundtruth/object-detection",
            "human-annotated": "no",
            "creation-date": created,
            "job-name": "labeling-job/birds-job",
        },
    }
    return f"{token} {json.dumps(label)}\n"


def test_auto_labels_are_counted_by_the_first_integer_folder(tmp_path):
    store = LocalObjectStore(tmp_path)
    folder = JOB + "activelearning/"
    store.write_bytes(
        folder + "3/auto-annotation/auto_annotator_output.txt",
        (
            _auto_line("tok-a", 2, "2026-11-28T10:00:00.500000")
            + _auto_line("tok-b", 0, "2026-11-28T12:30:00.000001")
            + "\n"
        ).encode(),
    )
    store.write_bytes(
        folder + "validation/11/run-2/output/auto_annotator_output.txt",
        _auto_line("tok-c", 1, "2026-12-02T08:00:00.250000").encode(),
    )
    store.write_bytes(folder + "3/validation-set/output.txt", b"not read\n")

    counts = read_auto_label_counts(store, JOB, "category")

    assert counts == {
        3: IterationLabels(3, images=2, boxes=2, finished_at=datetime(2026, 11, 28, 12, 30, 0, 1)),
        11: IterationLabels(11, images=1, boxes=1, finished_at=datetime(2026, 12, 2, 8, 0, 0, 250000)),
    }


def test_auto_label_errors_name_file_and_line(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.write_bytes(JOB + "activelearning/latest/auto_annotator_output.txt", b"")
    with pytest.raises(LabelingOutputError, match="no iteration number among the folders"):
        read_auto_label_counts(store, JOB, "category")

    store = LocalObjectStore(tmp_path / "other")
    key = JOB + "activelearning/2/x/auto_annotator_output.txt"
    store.write_bytes(key, (_auto_line("t", 1, "2026-11-28T10:00:00.5") + "only-a-token\n").encode())
    with pytest.raises(LabelingOutputError, match=f"^{key} line 2: expected a token, a space and the JSON"):
        read_auto_label_counts(store, JOB, "category")


def test_training_jobs_are_found_from_model_artifacts(tmp_path):
    store = LocalObjectStore(tmp_path)
    for key in [
        "training/10/model/birds-al-10/output/model.tar.gz",
        "training/2/model/birds-al-2/output/model.tar.gz",
        "training/auto-label/4/deeper/birds-al-4/output/model.tar.gz",
        "training/2/model/birds-al-2/output/metrics.json",
    ]:
        store.write_bytes(JOB + key, b"x")

    jobs = list_auto_labeling_training_jobs(store, JOB)

    assert jobs == [
        AutoLabelingTrainingJob(2, "birds-al-2", JOB + "training/2/model/birds-al-2/output/model.tar.gz"),
        AutoLabelingTrainingJob(
            4, "birds-al-4", JOB + "training/auto-label/4/deeper/birds-al-4/output/model.tar.gz"
        ),
        AutoLabelingTrainingJob(10, "birds-al-10", JOB + "training/10/model/birds-al-10/output/model.tar.gz"),
    ]
    store.write_bytes(JOB + "training/latest/birds-al-x/output/model.tar.gz", b"x")
    with pytest.raises(LabelingOutputError, match="no iteration number"):
        list_auto_labeling_training_jobs(store, JOB)


def test_iteration_numbers_are_read_in_full():
    assert parse_iteration_folder("iteration-10") == 10
    assert parse_iteration_folder("iteration-2") == 2
    with pytest.raises(LabelingOutputError, match="not an iteration folder"):
        parse_iteration_folder("iteration-x")


def test_iteration_summary_merges_human_and_auto_iterations_with_prices():
    human = {
        1: IterationLabels(1, 10, 14, datetime(2026, 11, 26, 10)),
        2: IterationLabels(2, 4, 5, datetime(2026, 11, 27, 10)),
    }
    auto = {2: IterationLabels(2, 20, 25, datetime(2026, 11, 27, 12)), 3: IterationLabels(3, 6, 6, None)}

    summary = iteration_summary(
        human, auto, LabelPrices(human_base=0.1, per_worker=0.05, workers=2, auto=0.02)
    )

    assert list(summary.columns) == [
        "iteration",
        "human_images",
        "human_boxes",
        "auto_images",
        "auto_boxes",
        "human_cost",
        "auto_cost",
        "finished_at",
    ]
    assert summary["iteration"].tolist() == [1, 2, 3]
    assert summary["human_images"].tolist() == [10, 4, 0]
    assert summary["auto_boxes"].tolist() == [0, 25, 6]
    np.testing.assert_allclose(summary["human_cost"], [2.0, 0.8, 0.0])
    np.testing.assert_allclose(summary["auto_cost"], [0.0, 0.4, 0.12])
    assert summary["finished_at"].tolist()[:2] == [
        pd.Timestamp(2026, 11, 26, 10),
        pd.Timestamp(2026, 11, 27, 12),
    ]
    assert pd.isna(summary["finished_at"].iloc[2])
    assert LabelPrices().human == pytest.approx(0.26)
    assert len(iteration_summary({}, {})) == 0


MANIFEST_LINES = [
    {
        "source-ref": "s3://b/p/images/0a1b.jpg",
        "category": {
            "image_size": [{"width": 640, "height": 480, "depth": 3}],
            "annotations": [{"class_id": 0, "left": 41, "top": 60, "width": 120, "height": 88}],
        },
        "category-metadata": {
            "objects": [{"confidence": 0.86}],
            "class-map": {"0": "Bird"},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-11-26T10:15:02.731125",
            "job-name": "labeling-job/birds-job",
        },
    },
    {
        "source-ref": "s3://b/p/images/0c2d.jpg",
        "category": {"image_size": [{"width": 200, "height": 100, "depth": 3}], "annotations": []},
        "category-metadata": {
            "objects": [],
            "class-map": {},
            "type": "groundtruth/object-detection",
            "human-annotated": "yes",
            "creation-date": "2026-11-26T10:15:02.731125",
            "job-name": "labeling-job/birds-job",
        },
    },
]


def _answer(worker_id, boxes, size=None):
    content = {"boundingBoxes": boxes}
    if size is not None:
        content["inputImageProperties"] = {"width": size[0], "height": size[1]}
    return {
        "workerId": worker_id,
        "submissionTime": "2026-11-26T10:12:00.000Z",
        "acceptanceTime": "2026-11-26T10:11:19.500Z",
        "timeSpentInSeconds": 40.5,
        "answerContent": {"boundingBox": content},
        "workerMetadata": {"identityData": {"identityProviderType": "Cognito", "sub": "x"}},
    }


def _literal_job(tmp_path):
    store = LocalObjectStore(tmp_path)
    store.write_bytes(
        JOB + "manifests/output/output.manifest",
        "".join(json.dumps(line) + "\n" for line in MANIFEST_LINES).encode(),
    )
    box = {"label": "Bird", "left": 40, "top": 58, "width": 124, "height": 90}
    _write_json(
        store,
        JOB + "annotations/worker-response/iteration-1/0/2026-11-26_10:12:00.json",
        {"answers": [_answer("private.w1", [box], size=(640, 480)), _answer("private.w2", [box])]},
    )
    _write_json(
        store,
        JOB + "annotations/worker-response/iteration-10/1/2026-12-01_10:12:00.json",
        {
            "answers": [
                _answer("private.w3", None, size=(200, 100)),
                _answer("private.w1", [box | {"left": 100}]),
            ]
        },
    )
    return store


def test_literal_worker_responses_fall_back_to_manifest_sizes(tmp_path):
    store = _literal_job(tmp_path)
    reference = BoxTable.build(image=[1], xyxy=[[0.1, 0.1, 0.5, 0.5]])

    dataset = load_labeling_dataset(store, JOB, "category", reference)

    assert dataset.worker_ids == ["private.w1", "private.w2", "private.w3"]
    np.testing.assert_array_equal(dataset.workers.image, [0, 0, 1])
    np.testing.assert_array_equal(dataset.workers.worker, [0, 1, 0])
    expected_first = [40 / 640, 58 / 480, 164 / 640, 148 / 480]
    np.testing.assert_allclose(dataset.workers.xyxy[0], expected_first)
    np.testing.assert_allclose(dataset.workers.xyxy[1], expected_first)  # size from the output manifest
    np.testing.assert_allclose(dataset.workers.xyxy[2], [0.5, 0.58, 1.0, 1.0])  # clipped to the image
    assert dataset.reference is reference

    responses = read_worker_responses(store, JOB, {0: 0, 1: 1}, {"Bird": 0}, {0: (640, 480), 1: (200, 100)})
    np.testing.assert_array_equal(responses.answer_iteration, [1, 1, 10, 10])
    np.testing.assert_array_equal(responses.answer_worker, [0, 1, 2, 0])
    np.testing.assert_allclose(responses.task_seconds, [40.5] * 4)


def test_worker_response_errors_name_the_file(tmp_path):
    store = _literal_job(tmp_path)
    with pytest.raises(LabelingOutputError, match=r"'Bird', not one of the known labels \('Duck'\)"):
        read_worker_responses(store, JOB, {0: 0, 1: 1}, {"Duck": 0})
    with pytest.raises(LabelingOutputError, match=r"iteration-10/1/.*datasetObjectId 1 is not an object"):
        read_worker_responses(store, JOB, {0: 0}, {"Bird": 0}, {0: (640, 480)})
    with pytest.raises(
        LabelingOutputError, match="inputImageProperties' is missing and the image size is not"
    ):
        read_worker_responses(store, JOB, {0: 0, 1: 1}, {"Bird": 0})

    store.write_bytes(JOB + "annotations/worker-response/iteration-1/notes.json", b"{}")
    with pytest.raises(
        LabelingOutputError, match=r"iteration-1/notes\.json: expected annotations/worker-response/"
    ):
        read_worker_responses(store, JOB, {0: 0, 1: 1}, {"Bird": 0}, {0: (640, 480)})


def test_reference_for_images_beyond_the_manifest_is_rejected(tmp_path):
    store = _literal_job(tmp_path)
    with pytest.raises(
        LabelingOutputError, match=r"refer to image 2, but the output manifest .* has 2 images"
    ):
        load_labeling_dataset(store, JOB, "category", BoxTable.build(image=[2], xyxy=[[0, 0, 1, 1]]))


def test_answers_without_boxes_need_no_image_size(tmp_path):
    store = LocalObjectStore(tmp_path)
    _write_json(
        store,
        JOB + "annotations/worker-response/iteration-1/0/2026-11-26_10:12:00.json",
        {"answers": [_answer("private.w1", []), _answer("private.w2", None)]},
    )
    responses = read_worker_responses(store, JOB, {0: 5}, {"Bird": 0})
    assert len(responses.boxes) == 0
    assert responses.worker_ids == ["private.w1", "private.w2"]
    np.testing.assert_array_equal(responses.answer_image, [5, 5])
