"""The parts of the reports: image cache, image selection, charts, predictions, metrics JSON, HTML tables."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.collections import PatchCollection
from PIL import Image

from ground_truth_pipeline.boxes import BoxTable, LabeledImage, LabelingDataset
from ground_truth_pipeline.reports.charts import (
    regression_line,
    training_curves_figure,
    worker_agreement_figure,
)
from ground_truth_pipeline.reports.drawing import counted, figure_png, new_figure, show_notice
from ground_truth_pipeline.reports.html_report import cell, metrics_tables
from ground_truth_pipeline.reports.image_cache import ImageCache, ImageFailure, Thumbnail
from ground_truth_pipeline.reports.image_grids import human_samples_figure, miou_extremes_figure
from ground_truth_pipeline.reports.metrics_json import metrics_json_bytes
from ground_truth_pipeline.reports.pdf_pages import pdf_sections
from ground_truth_pipeline.reports.predictions import prediction_figure, predictions_above_threshold
from ground_truth_pipeline.reports.selection import random_sample, ranked, spread_over_ranking


def encoded(width: int, height: int, image_format: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format=image_format)
    return buffer.getvalue()


class SlowCountingFetch:
    """A fetch that takes a moment, so concurrent requests for one URI would overlap if not serialised."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, uri: str) -> bytes:
        with self._lock:
            self.calls[uri] += 1
        time.sleep(0.01)
        return self.objects[uri]


def test_large_images_are_downscaled_keeping_aspect_and_scale() -> None:
    cache = ImageCache(SlowCountingFetch({"s3://b/big.jpg": encoded(1600, 1200)}), max_side=320)
    thumbnail = cache.get("s3://b/big.jpg")
    assert isinstance(thumbnail, Thumbnail)
    assert thumbnail.pixels.shape == (240, 320, 3)
    assert (thumbnail.width, thumbnail.height) == (1600, 1200)
    assert thumbnail.scale == pytest.approx(0.2)


def test_small_images_keep_their_size() -> None:
    cache = ImageCache(SlowCountingFetch({"s3://b/small.png": encoded(100, 50, "PNG")}), max_side=320)
    thumbnail = cache.get("s3://b/small.png")
    assert isinstance(thumbnail, Thumbnail)
    assert thumbnail.pixels.shape == (50, 100, 3)
    assert thumbnail.scale == 1.0
    assert tuple(thumbnail.pixels[0, 0]) == (200, 30, 30)


def test_parallel_prefetch_fetches_each_uri_once_and_spills_beyond_the_memory_budget() -> None:
    objects = {f"s3://b/{i}.jpg": encoded(64 + i, 48) for i in range(6)}
    fetch = SlowCountingFetch(objects)
    one_thumbnail = 64 * 48 * 3
    with ImageCache(fetch, max_side=128, memory_limit_bytes=2 * one_thumbnail) as cache:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(cache.get, ["s3://b/0.jpg"] * 8))
        cache.prefetch([*objects, *objects], max_workers=4)
        assert cache.bytes_in_memory <= 2 * (70 * 48 * 3)
        for uri in objects:
            thumbnail = cache.get(uri)
            assert isinstance(thumbnail, Thumbnail)
            assert thumbnail.pixels.shape == (48, int(uri.split("/")[-1][0]) + 64, 3)
    assert fetch.calls == Counter(dict.fromkeys(objects, 1))


def test_an_unreadable_image_is_a_failure_remembered_without_refetching() -> None:
    fetch = SlowCountingFetch({"s3://b/garbage.jpg": b"GIF89a nonsense"})
    cache = ImageCache(fetch)
    missing = cache.get("s3://b/missing.jpg")
    assert isinstance(missing, ImageFailure)
    assert missing.error == "KeyError: 's3://b/missing.jpg'"
    assert isinstance(cache.get("s3://b/garbage.jpg"), ImageFailure)
    cache.get("s3://b/garbage.jpg")
    assert fetch.calls == Counter({"s3://b/missing.jpg": 1, "s3://b/garbage.jpg": 1})
    assert set(cache.failures) == {"s3://b/missing.jpg", "s3://b/garbage.jpg"}


def test_ranked_puts_nan_last_and_breaks_ties_by_index() -> None:
    values = np.array([0.5, np.nan, 0.9, 0.5, 0.1])
    indices = np.arange(5)
    assert ranked(indices, values).tolist() == [2, 0, 3, 4, 1]
    assert ranked(indices, values, descending=False).tolist() == [4, 0, 3, 2, 1]


def test_spread_over_ranking_keeps_both_ends() -> None:
    ranking = np.arange(100, 110)
    assert spread_over_ranking(ranking, 4).tolist() == [100, 103, 106, 109]
    assert spread_over_ranking(ranking, 50).tolist() == ranking.tolist()
    with pytest.raises(ValueError, match="at least 1, got 0"):
        spread_over_ranking(ranking, 0)


def test_random_sample_is_reproducible_and_in_dataset_order() -> None:
    indices = np.arange(0, 40, 2)
    sample = random_sample(indices, 5, seed=3)
    assert sample.tolist() == sorted(sample.tolist())
    assert len(set(sample.tolist())) == 5
    assert set(sample.tolist()) <= set(indices.tolist())
    assert np.array_equal(sample, random_sample(indices, 5, seed=3))
    assert random_sample(indices[:3], 5, seed=3).tolist() == [0, 2, 4]


def small_dataset(human: list[bool]) -> LabelingDataset:
    images = [LabeledImage(i, f"s3://b/{i}.jpg", str(i), 64, 48, h) for i, h in enumerate(human)]
    boxes = BoxTable.build(image=range(len(human)), xyxy=[[0.1, 0.1, 0.6, 0.6]] * len(human))
    return LabelingDataset(images, boxes, BoxTable.empty(), boxes, [])


def test_pdf_sections_rank_by_the_metric_and_cap_each_section() -> None:
    dataset = small_dataset([True] * 30 + [False] * 2)
    values = np.linspace(0, 1, 32)
    worker, consolidated, auto = pdf_sections(dataset, values, images_per_section=27)
    assert [s.title for s in (worker, consolidated, auto)] == ["Worker", "Consolidated human", "Auto"]
    assert worker.worker_boxes and not consolidated.worker_boxes
    assert worker.images[0] == 29 and worker.images[-1] == 0
    assert (len(worker.images), worker.group_size, worker.page_count) == (27, 30, 2)
    assert auto.images.tolist() == [31, 30]
    assert auto.page_count == 1


def test_pdf_sections_without_reference_boxes_draw_and_mention_none() -> None:
    dataset = small_dataset([True, True, False])
    sections = pdf_sections(dataset, np.array([0.2, 0.9, 0.5]), images_per_section=5, with_reference=False)
    assert [s.reference_boxes for s in sections] == [False, False, False]
    assert not any("reference" in s.description for s in sections)
    with_reference = pdf_sections(dataset, np.array([0.2, 0.9, 0.5]), images_per_section=5)
    assert [s.reference_boxes for s in with_reference] == [False, True, True]


def test_human_samples_without_reference_boxes_show_workers_and_consolidated_only() -> None:
    dataset = small_dataset([True, True])
    cache = ImageCache(SlowCountingFetch({f"s3://b/{i}.jpg": encoded(64, 48) for i in range(2)}))
    figure = human_samples_figure(dataset, cache, np.array([0, 1]), with_reference=False)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["0 workers, 0 boxes", "Consolidated: 1 box"] * 2
    assert figure.get_suptitle() == "Human-labeled examples: worker and consolidated boxes"


def test_worker_agreement_figure_summarises_human_images_with_worker_boxes() -> None:
    dataset = small_dataset([True, True, True, False])
    agreement = np.array([0.5, np.nan, 1.0, np.nan])
    histogram_ax, scatter_ax = worker_agreement_figure(
        dataset, agreement, np.array([0.4, 0.6, 0.8, 0.9])
    ).axes
    assert histogram_ax.get_title() == "2 human-labeled images with worker boxes, mean agreement 0.750"
    assert [line.get_label() for line in scatter_ax.get_lines()] == [
        "Human (2 images)",
        "Human fit, slope 1.25",
    ]


def test_worker_agreement_figure_without_worker_boxes_says_so() -> None:
    figure = worker_agreement_figure(small_dataset([False, False]), np.full(2, np.nan), np.ones(2))
    assert (
        figure_texts(figure)
        == ["No worker drew a box in this job:\nthere is no worker agreement to show."] * 2
    )


def test_regression_line_needs_two_points_with_different_confidences() -> None:
    assert regression_line(np.array([0.5]), np.array([0.7])) is None
    assert regression_line(np.array([0.5, 0.5, 0.5]), np.array([0.1, 0.7, 0.9])) is None
    assert regression_line(np.array([0.2, np.nan]), np.array([0.1, 0.3])) is None
    slope, intercept = regression_line(np.array([0.0, 0.5, 1.0, np.nan]), np.array([0.2, 0.45, 0.7, 0.1]))
    assert (slope, intercept) == pytest.approx((0.5, 0.2))
    assert regression_line(np.array([0.1, 0.9]), np.array([0.4, 0.4])) == pytest.approx((0.0, 0.4))


def figure_texts(figure) -> list[str]:
    return [text.get_text() for ax in figure.axes for text in ax.texts]


def test_training_curves_without_automated_labeling_say_so() -> None:
    texts = figure_texts(training_curves_figure([]))
    assert any(text.startswith("No automated labeling in this job") for text in texts)


def test_training_curves_draw_one_line_per_model() -> None:
    figure = training_curves_figure([("iteration 2", [0.1, 0.3]), ("iteration 3", [0.2, 0.4, 0.5])])
    (ax,) = figure.axes
    assert [line.get_label() for line in ax.get_lines()] == ["iteration 2", "iteration 3"]
    assert ax.get_lines()[1].get_xdata().tolist() == [1, 2, 3]


def test_dollar_signs_are_drawn_as_text_not_parsed_as_math() -> None:
    figure = new_figure(3, 2)
    show_notice(figure.subplots(), r"Class $\notacommand$ costs $5")
    assert figure_png(figure).startswith(b"\x89PNG")


def test_extreme_panels_show_each_image_miou_in_its_title() -> None:
    dataset = small_dataset([True, True, True])
    cache = ImageCache(SlowCountingFetch({f"s3://b/{i}.jpg": encoded(64, 48) for i in range(3)}))
    miou = np.array([0.25, 0.875, 0.5])
    figure = miou_extremes_figure(dataset, cache, miou, np.array([1, 2, 0]), "Human", "highest")
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles == ["mIoU 0.875", "mIoU 0.500", "mIoU 0.250"]


def test_predictions_above_threshold_keep_strictly_higher_scores_best_first() -> None:
    predictions = [
        [0, 0.2, 0.0, 0.0, 1.0, 1.0],
        [1, 0.45, 0.1, 0.2, 0.3, 0.4],
        [0, 0.05, 0.5, 0.5, 0.6, 0.6],
        [0, 0.91, 0.6, 0.1, 0.9, 0.5],
    ]
    boxes = predictions_above_threshold(predictions, threshold=0.2)
    assert boxes.score.tolist() == [0.91, 0.45]
    assert boxes.class_id.tolist() == [0, 1]
    assert boxes.xyxy.tolist() == [[0.6, 0.1, 0.9, 0.5], [0.1, 0.2, 0.3, 0.4]]
    assert len(predictions_above_threshold([], threshold=0.2)) == 0


def test_a_malformed_prediction_is_named() -> None:
    with pytest.raises(ValueError, match=r"Prediction 1 has 5 values, expected 6: \[class_id, score"):
        predictions_above_threshold([[0, 0.9, 0, 0, 1, 1], [0, 0.9, 0, 0, 1]])


def test_prediction_figure_draws_only_the_kept_boxes_in_pixels() -> None:
    thumbnail = Thumbnail("s3://b/x.jpg", np.zeros((60, 80, 3), np.uint8), width=800, height=600)
    boxes = predictions_above_threshold([[0, 0.91, 0.1, 0.2, 0.5, 0.7], [3, 0.1, 0, 0, 1, 1]], threshold=0.2)
    figure = prediction_figure(thumbnail, boxes, 0.2, "Endpoint", class_names=["Bird"])
    (ax,) = figure.axes
    (collection,) = [c for c in ax.collections if isinstance(c, PatchCollection)]
    (path,) = collection.get_paths()
    assert path.get_extents().bounds == pytest.approx((80, 120, 320, 300))
    assert figure_texts(figure) == ["Bird 0.91"]
    assert "1 box with score above 0.2" in figure.get_suptitle()


def test_metrics_json_is_sorted_indented_and_writes_non_finite_numbers_as_null() -> None:
    metrics = {
        "b": {"inf": float("inf"), "ninf": np.float32(-np.inf), "nan": np.nan, "x": np.int64(3)},
        "a": (1.5, np.array([0.25, np.nan])),
    }
    text = metrics_json_bytes(metrics).decode("utf-8")
    assert json.loads(text) == {
        "a": [1.5, [0.25, None]],
        "b": {"inf": None, "nan": None, "ninf": None, "x": 3},
    }
    assert text.index('"a"') < text.index('"b"')
    assert '\n  "a": [\n    1.5,' in text


def test_metrics_json_names_a_value_it_cannot_hold() -> None:
    with pytest.raises(TypeError, match=r"metrics\['a'\]\[1\] is a object, which JSON cannot hold"):
        metrics_json_bytes({"a": [1, object()]})


def test_metrics_tables_make_matrices_records_and_dotted_keys() -> None:
    tables = metrics_tables(
        {
            "images": 10,
            "by_group": {"human": {"miou": 0.5, "images": 8}, "auto": {"miou": None, "images": 2}},
            "labeling": {"job": {"name": "j", "status": "Completed"}, "cost": 1.25},
            "iterations": [{"iteration": 1, "cost": 0.5}, {"iteration": 2, "auto": 3}],
        }
    )
    by_title = {table.title: table for table in tables}
    assert list(by_title) == ["Summary", "by_group", "iterations", "labeling"]
    assert by_title["by_group"].columns == ("", "miou", "images")
    assert [c.text for c in by_title["by_group"].rows[1]] == ["auto", "n/a", "2"]
    assert by_title["iterations"].columns == ("iteration", "cost", "auto")
    assert [c.text for c in by_title["iterations"].rows[1]] == ["2", "n/a", "3"]
    assert [c.text for c in by_title["labeling"].rows[0]] == ["job.name", "j"]


def test_cells_format_numbers_for_reading() -> None:
    assert cell(1234567).text == "1,234,567"
    assert cell(0.123456).text == "0.1235"
    assert cell(2.0).text == "2"
    assert cell(True).text == "yes"
    assert cell([1, 2.5, "x"]).text == "1, 2.5, x"
    assert cell(0.5).is_number and not cell("0.5").is_number


def test_counted_picks_singular_or_plural() -> None:
    assert counted(1, "box", "boxes") == "1 box"
    assert counted(0, "box", "boxes") == "0 boxes"
    assert counted(3, "worker") == "3 workers"
