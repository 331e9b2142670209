"""The run's report beyond the labeling: the most confident labels, the trained model's validation mAP per
epoch, the batch and real-time predictions with class names, and the page that the last task completes."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ground_truth_pipeline.boxes import BoxTable, LabeledImage, LabelingDataset
from ground_truth_pipeline.object_store import LocalObjectStore
from ground_truth_pipeline.reports import (
    EndpointAnswer,
    ImagePredictions,
    TrainedModel,
    complete_run_report,
)
from ground_truth_pipeline.reports.charts import validation_map_figure
from ground_truth_pipeline.reports.drawing import figure_png, new_figure
from ground_truth_pipeline.reports.html_report import (
    HtmlCell,
    HtmlFigure,
    HtmlLink,
    HtmlSection,
    HtmlTable,
    ReportPage,
)
from ground_truth_pipeline.reports.image_cache import ImageCache
from ground_truth_pipeline.reports.image_grids import most_confident_figure
from ground_truth_pipeline.reports.predictions import (
    PredictionPanel,
    prediction_figure,
    predictions_above_threshold,
    predictions_grid_figure,
)
from ground_truth_pipeline.reports.selection import ImageGroup, most_confident
from ground_truth_pipeline.training_curves import read_training_curve

PREFIX = "exp/bird/run-1/analysis"
HOSTILE = '<script>alert("owned")</script>'
CLASS_NAMES = ["Bird", f"{HOSTILE} & Cat"]
JOB = "gtod-bird-0123456789-train"


def jpeg(width: int = 120, height: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (70, 110, 160)).save(buffer, format="JPEG")
    return buffer.getvalue()


def figure_texts(figure) -> list[str]:
    """Every text drawn in the figure and its subfigures: panel texts, titles and headings."""
    texts = [text.get_text() for text in figure.findobj(lambda artist: hasattr(artist, "get_text"))]
    return [text for text in texts if text]


class CountingFetch:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.calls: Counter[str] = Counter()

    def __call__(self, uri: str) -> bytes:
        self.calls[uri] += 1
        return self.objects[uri]


# Class names on the predictions.


def test_predictions_are_labelled_with_the_class_names_of_the_label_categories() -> None:
    rows = [[1, 0.55, 0.5, 0.5, 0.9, 0.9], [0, 0.91, 0.1, 0.1, 0.4, 0.4], [5, 0.4, 0, 0, 0.2, 0.2]]
    boxes = predictions_above_threshold(rows, 0.2)
    cache = ImageCache(CountingFetch({"s3://b/a.jpg": jpeg()}))
    single = prediction_figure(cache.get("s3://b/a.jpg"), boxes, 0.2, "Endpoint", CLASS_NAMES)
    grid = predictions_grid_figure(
        [PredictionPanel("a.jpg", cache.get("s3://b/a.jpg"), boxes)] * 2, "Batch", CLASS_NAMES
    )
    for figure in (single, grid):
        labels = [text.get_text() for ax in figure.axes for text in ax.texts]
        assert sorted(set(labels)) == sorted(["Bird 0.91", f"{HOSTILE} & Cat 0.55", "class 5 0.40"])
        assert not any(label.startswith("class 0") or label.startswith("class 1") for label in labels)


# The trained model's validation mAP per epoch, from its log lines.


class LogsOfOneJob:
    """A CloudWatch Logs client holding one training job's stream, served two events a page."""

    def __init__(self, stream: str, messages: list[str]) -> None:
        self.stream = stream
        self.messages = messages

    def get_paginator(self, operation: str):
        assert operation == "describe_log_streams"
        stream = self.stream

        class Paginator:
            def paginate(self, logGroupName: str, logStreamNamePrefix: str):
                matching = [{"logStreamName": stream}] if stream.startswith(logStreamNamePrefix) else []
                return [{"logStreams": matching}]

        return Paginator()

    def get_log_events(self, logGroupName, logStreamName, startFromHead, nextToken=None, limit=None):
        assert logStreamName == self.stream
        start = int(nextToken or 0)
        events = [{"message": message} for message in self.messages[start : start + 2]]
        return {"events": events, "nextForwardToken": str(min(start + 2, len(self.messages)))}


def training_log(values: list[float]) -> list[str]:
    lines = ["[12/06/2026 03:00:00 INFO 1] Final configuration: {u'num_training_samples': u'80'}"]
    for epoch, value in enumerate(values):
        lines.append(f"[12/06/2026 03:00:{epoch:02d} INFO 1] Epoch[{epoch}] Train-mAP=0.9 (not validation)")
        lines.append(
            f"[12/06/2026 03:00:{epoch:02d} INFO 1] "
            f"#quality_metric: host=algo-1, epoch={epoch}, validation mAP <score>=({value})"
        )
    return lines


def test_the_validation_map_chart_plots_each_epoch_the_training_job_logged() -> None:
    values = [0.05, 0.21, 0.37, 0.33]
    logs = LogsOfOneJob(f"{JOB}/algo-1-1765000000", training_log(values))
    curve = read_training_curve(logs, JOB)
    assert curve.validation_map == values
    assert curve.num_training_samples == 80

    figure = validation_map_figure(curve.job_name, curve.validation_map)
    [ax] = figure.axes
    line, best = ax.lines
    assert line.get_xdata().tolist() == [1, 2, 3, 4]
    assert line.get_ydata().tolist() == values
    assert (best.get_xdata().tolist(), best.get_ydata().tolist()) == ([3], [0.37])
    assert ax.get_title() == f"{JOB}\nvalidation mAP 0.330 after 4 epochs"
    assert "Best: 0.370 at epoch 3" in [text.get_text() for text in ax.get_legend().get_texts()]


def test_a_training_job_that_logged_no_validation_map_gets_a_notice() -> None:
    texts = figure_texts(validation_map_figure(JOB, []))
    assert f"The training job {JOB}\nlogged no validation mAP." in texts


# The five most confident human and machine labels.


def test_most_confident_takes_the_highest_first_ties_in_dataset_order_and_never_nan() -> None:
    confidence = np.array([0.5, 0.9, np.nan, 0.9, 0.7, 0.5, 0.2, 0.95])
    assert most_confident(np.arange(8), confidence, 5).tolist() == [7, 1, 3, 4, 0]
    assert most_confident(np.array([6, 5, 0]), confidence, 5).tolist() == [0, 5, 6]
    assert most_confident(np.array([2]), confidence, 5).tolist() == []
    assert most_confident(np.array([], dtype=np.int64), confidence, 5).tolist() == []
    with pytest.raises(ValueError, match="must not be negative, got -1"):
        most_confident(np.arange(8), confidence, -1)


def small_dataset(human: list[bool]) -> tuple[LabelingDataset, dict[str, bytes]]:
    images = [LabeledImage(i, f"s3://b/{i}.jpg", f"image-{i}", 120, 90, h) for i, h in enumerate(human)]
    boxes = BoxTable.build(image=range(len(human)), xyxy=[[0.1, 0.1, 0.6, 0.6]] * len(human))
    objects = {image.source_ref: jpeg() for image in images}
    return LabelingDataset(images, boxes, BoxTable.empty(), boxes, []), objects


def test_the_most_confident_figure_without_machine_labels_shows_the_human_row_and_says_so() -> None:
    dataset, objects = small_dataset([True] * 3)
    confidence = np.array([0.4, 0.8, 0.6])
    chosen = (
        ImageGroup("Human", most_confident(np.arange(3), confidence, 5)),
        ImageGroup("Auto", np.array([])),
    )
    fetch = CountingFetch(objects)
    with ImageCache(fetch) as cache:
        figure = most_confident_figure(dataset, cache, confidence, chosen, with_reference=True)
    texts = figure_texts(figure)
    assert "Human labels: the 3 most confident of 3 human-labeled images" in texts
    titles = [text for text in texts if text.startswith("confidence ")]
    assert titles == ["confidence 0.800, 1 box", "confidence 0.600, 1 box", "confidence 0.400, 1 box"]
    assert "No machine labels in this run: automated labeling was off or labeled no image." in texts
    assert "The most confident labels (orange) over the reference boxes (green)" in texts
    assert fetch.calls == Counter(dict.fromkeys(objects, 1))


def test_the_most_confident_figure_shows_five_of_each_group() -> None:
    dataset, objects = small_dataset([True] * 7 + [False] * 6)
    confidence = np.linspace(0.1, 0.9, 13)
    human, auto = np.arange(7), np.arange(7, 13)
    chosen = (
        ImageGroup("Human", most_confident(human, confidence, 5)),
        ImageGroup("Auto", most_confident(auto, confidence, 5)),
    )
    with ImageCache(CountingFetch(objects)) as cache:
        texts = figure_texts(most_confident_figure(dataset, cache, confidence, chosen, with_reference=False))
    assert "Human labels: the 5 most confident of 7 human-labeled images" in texts
    assert "Auto labels: the 5 most confident of 6 auto-labeled images" in texts
    assert sum(text.startswith("confidence ") for text in texts) == 10
    assert "The most confident labels (orange)" in texts


# The page kept between the analysis and the last task.


def png_of(colour: str) -> bytes:
    figure = new_figure(3, 2)
    figure.subplots().set_facecolor(colour)
    return figure_png(figure)


def labeling_page() -> ReportPage:
    table = HtmlTable("Summary", ("Metric", "Value"), ((HtmlCell("images"), HtmlCell("6", True)),))
    return ReportPage(
        title="Labeling analysis: Bird",
        subtitle="6 images",
        sections=(
            HtmlSection("Summary", "The metrics.", (table,)),
            HtmlSection("Most confident labels", figures=(HtmlFigure("Top", png_of("red"), "top.png"),)),
        ),
        appendix=(HtmlSection("Every image, sorted", links=(HtmlLink("PDF", "images-by-confidence.pdf"),)),),
    )


def test_a_page_round_trips_through_json_with_figures_read_by_file_name() -> None:
    page = labeling_page()
    pngs = {"top.png": page.sections[1].figures[0].png}
    assert ReportPage.from_json(page.to_json(), pngs.__getitem__) == page
    unnamed = HtmlSection("Orphan", figures=(HtmlFigure("No name", b"png"),))
    with pytest.raises(ValueError, match="Section 'Orphan' has figures without a file name: \\['No name'\\]"):
        ReportPage("t", "s", (unnamed,)).to_json()


def write_labeling_page(store: LocalObjectStore) -> None:
    page = labeling_page()
    store.write_bytes(f"{PREFIX}/top.png", page.sections[1].figures[0].png)
    store.write_bytes(f"{PREFIX}/report-page.json", page.to_json())
    store.write_bytes(f"{PREFIX}/report.html", page.render().encode())


BATCH = [
    ImagePredictions("s3://b/test-images/a.jpg", [[0, 0.9, 0.1, 0.1, 0.5, 0.5], [1, 0.1, 0, 0, 1, 1]]),
    ImagePredictions("s3://b/test-images/b.jpg", [[1, 0.6, 0.2, 0.2, 0.7, 0.9], [0, 0.3, 0, 0, 0.3, 0.3]]),
    ImagePredictions("s3://b/test-images/c.jpg", []),
]
ENDPOINT = EndpointAnswer(
    f"{HOSTILE}-endpoint",
    ImagePredictions("s3://b/test-images/a.jpg", [[1, 0.88, 0.1, 0.2, 0.3, 0.4], [0, 0.05, 0, 0, 1, 1]]),
    "../predictions/realtime-response.json",
)


def complete(store: LocalObjectStore, fetch: CountingFetch, **overrides):
    arguments = {
        "model": TrainedModel(JOB, [0.1, 0.3, 0.25], {"training job": JOB, "base network": HOSTILE}),
        "batch": BATCH,
        "endpoint": ENDPOINT,
        "class_names": CLASS_NAMES,
        "fetch": fetch,
        "title": f"Labeling, training and predictions: {HOSTILE}",
        "threshold": 0.2,
        "batch_images_shown": 2,
    }
    return complete_run_report(store, PREFIX, **(arguments | overrides))


def section_texts(html: str) -> dict[str, str]:
    sections = re.findall(r"<section[^>]*>\s*<h2>(.*?)</h2>(.*?)</section>", html, flags=re.DOTALL)
    return {
        unescape(title): " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split()) for title, body in sections
    }


@pytest.fixture
def completed(tmp_path: Path) -> tuple[LocalObjectStore, CountingFetch, str]:
    store = LocalObjectStore(tmp_path)
    write_labeling_page(store)
    fetch = CountingFetch({item.image_uri: jpeg() for item in BATCH})
    files = complete(store, fetch)
    assert files.keys == tuple(
        f"{PREFIX}/{name}"
        for name in (
            "model-validation-map.png",
            "batch-predictions.png",
            "endpoint-predictions.png",
            "report.html",
        )
    )
    assert files.unreadable_images == {}
    return store, fetch, store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")


def test_the_run_sections_come_after_the_labeling_and_before_the_appendix(completed) -> None:
    _, _, html = completed
    headings = [unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", html)]
    assert headings == [
        "Summary",
        "Most confident labels",
        "Trained model",
        "Batch transform",
        "Real-time endpoint",
        "Every image, sorted",
    ]
    embedded = re.findall(r'src="data:image/png;base64,', html)
    assert len(embedded) == 4  # the labeling's figure and the three new ones


def test_the_run_sections_say_what_the_model_did(completed) -> None:
    _, _, html = completed
    sections = section_texts(html)
    model = sections["Trained model"]
    assert f"training job {JOB}" in model
    assert "epochs logged 3 final validation mAP 0.25 best validation mAP 0.3000 (epoch 2)" in model
    batch = sections["Batch transform"]
    assert "the 3 held-out images" in batch
    assert "The first 2 images are drawn" in batch
    assert "a.jpg 2 1 0.9 Bird (1)" in batch
    assert f"b.jpg 2 2 0.6 Bird (1), {HOSTILE} & Cat (1)" in batch
    assert "c.jpg 0 0 n/a none" in batch
    endpoint = sections["Real-time endpoint"]
    assert f"The real-time endpoint {HOSTILE}-endpoint answered for a.jpg with 2 candidate boxes" in endpoint
    assert f"{HOSTILE} & Cat 0.88 0.1 0.2 0.3 0.4" in endpoint
    assert 'href="../predictions/realtime-response.json"' in html


def test_every_text_of_the_run_is_escaped(completed) -> None:
    _, _, html = completed
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; &amp; Cat" in html
    assert "<title>Labeling, training and predictions: &lt;script&gt;" in html


def test_each_drawn_image_is_fetched_once_and_a_rerun_writes_the_same_page(completed, tmp_path) -> None:
    store, fetch, html = completed
    assert fetch.calls == Counter({BATCH[0].image_uri: 1, BATCH[1].image_uri: 1})  # c.jpg is not drawn
    complete(store, CountingFetch(fetch.objects))
    assert store.read_bytes(f"{PREFIX}/report.html").decode("utf-8") == html


def test_without_the_labeling_page_the_error_names_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"{PREFIX}/report-page.json is missing"):
        complete(LocalObjectStore(tmp_path), CountingFetch({}))


def test_bad_predictions_fail_before_any_image_is_fetched(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    write_labeling_page(store)
    fetch = CountingFetch({})
    broken = ImagePredictions("s3://b/test-images/a.jpg", [[0, 0.9, 0.1]])
    with pytest.raises(ValueError, match="Prediction 0 has 3 values, expected 6"):
        complete(store, fetch, batch=[broken])
    assert not fetch.calls
    assert json.loads(store.read_bytes(f"{PREFIX}/report-page.json"))["title"] == "Labeling analysis: Bird"


def test_an_unreadable_held_out_image_is_a_placeholder_and_named(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    write_labeling_page(store)
    fetch = CountingFetch({BATCH[0].image_uri: b"not an image", BATCH[1].image_uri: jpeg()})
    files = complete(store, fetch)
    assert list(files.unreadable_images) == [BATCH[0].image_uri]
    assert files.keys[-1] == f"{PREFIX}/report.html"
