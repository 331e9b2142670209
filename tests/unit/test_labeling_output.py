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
from tests.fixtures.recorded_trees import AUTO_JOB, HUMAN_JOB, RecordedTree

JOB = "exp/labeling/birds-job/"
# Output trees the local stack wrote (tests/fixtures/labeling_job_trees/): the readers read what the stack
# writes, in AWS's layout, and tests/local_aws/test_recorded_labeling_job_trees.py keeps the two in step.
HUMAN = RecordedTree.load(HUMAN_JOB)
AUTO = RecordedTree.load(AUTO_JOB)
RECORDED = pytest.mark.parametrize("tree", [HUMAN, AUTO], ids=lambda tree: tree.name)


def _worker_response_files(tree):
    """(iteration, datasetObjectId, document) of every worker-response file, by iteration and object."""
    files = [
        (int(path.parts[-3].removeprefix("iteration-")), int(path.parts[-2]), json.loads(path.read_text()))
        for path in (tree.folder / "annotations/worker-response").glob("iteration-*/*/*.json")
    ]
    return sorted(files, key=lambda file: file[:2])


def _drawn_boxes(answer):
    """The boxes of an answer, under whatever name the template gave its bounding-box element."""
    (element,) = answer["answerContent"].values()
    return element["boundingBoxes"], element["inputImageProperties"]


@RECORDED
def test_recorded_worker_responses_are_read_in_full(tree):
    dataset = load_labeling_dataset(tree.store, tree.job_prefix, "category", reference=None)
    files = _worker_response_files(tree)
    n_images = len(tree.source_refs)

    assert len(dataset.images) == n_images
    answers = [answer for _, _, document in files for answer in document["answers"]]
    assert dataset.worker_ids == list(dict.fromkeys(answer["workerId"] for answer in answers))
    assert dataset.workers.worker.min() == 0 and dataset.workers.worker.max() == len(dataset.worker_ids) - 1
    # Humans labeled the objects with worker responses; the one that is not an image failed; the stack's
    # counters agree.
    answered = sorted(oid for _, oid, _ in files)
    np.testing.assert_array_equal(np.flatnonzero(dataset.labeled_by_humans), answered)
    np.testing.assert_array_equal(np.flatnonzero(dataset.failed_mask), tree.failed_object_ids)
    assert dataset.labeled_by_humans.sum() == tree.counters["HumanLabeled"]
    assert dataset.labeled_by_machine.sum() == tree.counters["MachineLabeled"]
    assert len(dataset.reference) == 0

    # Every box drawn, with its class, in pixels of the image normalised by its size.
    class_ids = {name: class_id for class_id, name in enumerate(tree.categories)}
    assert len(dataset.workers) == sum(len(_drawn_boxes(answer)[0]) for answer in answers)
    for _, object_id, document in files:
        expected = []
        for answer in document["answers"]:
            boxes, size = _drawn_boxes(answer)
            scale = np.array([size["width"], size["height"]] * 2)
            for box in boxes:
                corners = [box["left"], box["top"], box["left"] + box["width"], box["top"] + box["height"]]
                expected.append([class_ids[box["label"]], *(np.array(corners) / scale)])
        drawn = dataset.workers.of_image(object_id)
        actual = np.column_stack([drawn.class_id, drawn.xyxy])
        np.testing.assert_allclose(
            np.sort(actual, axis=0), np.sort(np.array(expected).reshape(-1, 5), axis=0)
        )
    assert ((dataset.workers.xyxy >= 0) & (dataset.workers.xyxy <= 1)).all()

    # Consolidation averages the workers' matching boxes: each consolidated box is near one a worker drew.
    for image in np.flatnonzero(dataset.labeled_by_humans):
        drawn = dataset.workers.of_image(int(image)).xyxy
        for box in dataset.consolidated.of_image(int(image)).xyxy:
            assert np.abs(drawn - box).max(axis=1).min() < 0.06


@RECORDED
def test_recorded_answers_carry_iteration_worker_and_task_time(tree):
    identity = {i: i for i in range(len(tree.source_refs))}
    class_ids = {name: class_id for class_id, name in enumerate(tree.categories)}
    responses = read_worker_responses(tree.store, tree.job_prefix, identity, class_ids)

    read = list(
        zip(
            responses.answer_iteration.tolist(),
            responses.answer_object_id.tolist(),
            [responses.worker_ids[w] for w in responses.answer_worker],
            responses.task_seconds.tolist(),
            strict=True,
        )
    )
    assert read == [
        (iteration, object_id, answer["workerId"], answer["timeSpentInSeconds"])
        for iteration, object_id, document in _worker_response_files(tree)
        for answer in document["answers"]
    ]
    assert len(read) == tree.workers * tree.counters["HumanLabeled"]
    np.testing.assert_array_equal(responses.answer_image, responses.answer_object_id)


def _counts(labels):
    return {iteration: (c.images, c.boxes, c.finished_at) for iteration, c in labels.items()}


def _consolidated_boxes(tree):
    manifest = tree.folder / "manifests/output/output.manifest"
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    return sum(len(line["category"]["annotations"]) for line in lines if "category" in line)


def test_recorded_human_job_counts_per_iteration():
    human = read_consolidation_counts(HUMAN.store, HUMAN.job_prefix, "category")
    auto = read_auto_label_counts(HUMAN.store, HUMAN.job_prefix, "category")

    # The probe batch (10 objects, one not an image), then the other 4 in two consolidation batches: the
    # iteration finished with the later one.
    assert _counts(human) == {
        1: (9, 13, datetime(2026, 11, 26, 10, 1, 25)),
        2: (4, 10, datetime(2026, 11, 26, 10, 4, 19)),
    }
    assert auto == {}
    assert list_auto_labeling_training_jobs(HUMAN.store, HUMAN.job_prefix) == []
    assert sum(c.boxes for c in human.values()) == _consolidated_boxes(HUMAN)

    summary = iteration_summary(human, auto, LabelPrices(workers=HUMAN.workers))
    assert summary["iteration"].tolist() == [1, 2]
    assert summary["human_images"].sum() == HUMAN.counters["TotalLabeled"]
    np.testing.assert_allclose(summary["human_cost"], summary["human_images"] * (0.08 + 3 * 0.036))
    assert summary["auto_cost"].sum() == 0


def test_recorded_auto_labeling_job_counts_per_iteration():
    human = read_consolidation_counts(AUTO.store, AUTO.job_prefix, "category")
    auto = read_auto_label_counts(AUTO.store, AUTO.job_prefix, "category")

    # Humans: the probe (iteration 1), no first training batch at this size (no iteration 2), the validation
    # set (3), then the least sure objects of each round (one of iteration 4's three is not an image). The
    # machine labels from iteration 4 on; its iterations end with the latest creation-date of their labels.
    assert _counts(human) == {
        1: (10, 13, datetime(2026, 11, 26, 10, 6, 51)),
        3: (6, 8, datetime(2026, 11, 26, 10, 11, 41)),
        4: (2, 6, datetime(2026, 11, 26, 10, 13, 39)),
        5: (1, 3, datetime(2026, 11, 26, 10, 15, 5)),
    }
    assert _counts(auto) == {
        4: (7, 9, datetime(2026, 11, 26, 10, 11, 41, 46000)),
        5: (3, 5, datetime(2026, 11, 26, 10, 13, 39, 136000)),
    }
    assert sum(c.images for c in human.values()) == AUTO.counters["HumanLabeled"]
    assert sum(c.images for c in auto.values()) == AUTO.counters["MachineLabeled"]
    assert sum(c.boxes for c in [*human.values(), *auto.values()]) == _consolidated_boxes(AUTO)
    jobs = list_auto_labeling_training_jobs(AUTO.store, AUTO.job_prefix)
    assert (
        [(job.iteration, job.job_name) for job in jobs]
        == AUTO.training_jobs
        == [
            (4, "recorded-birds-auto-al-train-4"),
            (5, "recorded-birds-auto-al-train-5"),
        ]
    )

    summary = iteration_summary(human, auto)
    assert summary["iteration"].tolist() == [1, 3, 4, 5]
    assert summary["human_images"].sum() + summary["auto_images"].sum() == AUTO.counters["TotalLabeled"]
    np.testing.assert_allclose(summary["human_cost"], summary["human_images"] * 0.26)
    np.testing.assert_allclose(summary["auto_cost"], summary["auto_images"] * 0.08)
    # Each iteration ends with its last label, human or machine.
    assert summary["finished_at"].tolist() == [
        pd.Timestamp(2026, 11, 26, 10, 6, 51),
        pd.Timestamp(2026, 11, 26, 10, 11, 41),
        pd.Timestamp(2026, 11, 26, 10, 13, 39),
        pd.Timestamp(2026, 11, 26, 10, 15, 5),
    ]


def test_recorded_answers_without_image_properties_take_the_manifest_sizes(tmp_path):
    """AWS's answers may lack ``inputImageProperties`` (the stack's always have them): the boxes are then
    normalised by the image size in the output manifest, to the same values."""
    store = LocalObjectStore(tmp_path)
    HUMAN.copy_to(store, JOB)
    before = load_labeling_dataset(store, JOB, "category", reference=None)
    for key in store.list_keys(JOB + "annotations/worker-response/"):
        document = json.loads(store.read_bytes(key))
        for answer in document["answers"]:
            for element in answer["answerContent"].values():
                del element["inputImageProperties"]
        _write_json(store, key, document)

    after = load_labeling_dataset(store, JOB, "category", reference=None)

    assert len(after.workers) == len(before.workers) > 0
    np.testing.assert_allclose(after.workers.xyxy, before.workers.xyxy)
    with pytest.raises(
        LabelingOutputError, match="inputImageProperties' is missing and the image size is not"
    ):
        read_worker_responses(store, JOB, {i: i for i in range(14)}, {"Bird": 0, "Eagle": 1})


def test_recorded_worker_labels_must_be_categories_of_the_job():
    with pytest.raises(
        LabelingOutputError,
        match=r"annotations/worker-response/iteration-1/\d+/.*\.json: .*'Eagle', not one of the known labels",
    ):
        read_worker_responses(HUMAN.store, HUMAN.job_prefix, {i: i for i in range(14)}, {"Bird": 0})


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
