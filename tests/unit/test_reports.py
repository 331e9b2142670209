"""The whole analysis report, written to a local object store from a small labeling job of real images."""

from __future__ import annotations

import base64
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from ground_truth_pipeline.boxes import BoxTable, LabeledImage, LabelingDataset
from ground_truth_pipeline.object_store import LocalObjectStore
from ground_truth_pipeline.reports import (
    EndpointAnswer,
    ImagePredictions,
    ReportFiles,
    TrainedModel,
    complete_run_report,
    write_analysis_report,
    write_prediction_report,
)

PREFIX = "exp/bird/run-1/analysis"
HOSTILE_CLASS = '<script>alert("owned")</script> & Bird'
BROKEN_URI = "s3://bucket/images/broken.jpg"
PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")

# (uri, format, width, height, human, reference boxes): the object of each image is a filled rectangle
# at its reference box, so a person looking at the report sees boxes land on the objects.
IMAGES = [
    ("s3://bucket/images/a.jpg", "JPEG", 640, 480, True, [[0.1, 0.2, 0.5, 0.7], [0.6, 0.1, 0.9, 0.4]]),
    ("s3://bucket/images/b.png", "PNG", 300, 400, True, [[0.2, 0.3, 0.8, 0.9]]),
    ("s3://bucket/images/c.jpg", "JPEG", 1600, 1200, True, [[0.3, 0.3, 0.7, 0.6]]),
    (BROKEN_URI, "JPEG", 640, 480, True, [[0.1, 0.1, 0.3, 0.3]]),
    ("s3://bucket/images/d.jpg", "JPEG", 500, 375, False, [[0.15, 0.25, 0.55, 0.85]]),
    ("s3://bucket/images/e.jpg", "JPEG", 480, 640, False, [[0.4, 0.1, 0.9, 0.5]]),
]
MIOU = np.array([0.9, 0.6, 0.75, 0.0, 0.8, 0.4])
CONFIDENCE = np.array([0.85, 0.5, 0.7, 0.1, 0.9, 0.3])
WORKER_AGREEMENT = np.array([0.8, 0.55, 0.7, 0.2, np.nan, np.nan])  # auto-labeled images have no workers
EXPECTED_FILES = [
    "cost-and-counts.png",
    "training-curves.png",
    "human-samples.png",
    "auto-samples.png",
    "box-counts.png",
    "worker-agreement.png",
    "miou-histogram.png",
    "human-highest-miou.png",
    "human-lowest-miou.png",
    "auto-highest-miou.png",
    "auto-lowest-miou.png",
    "confidence-vs-miou.png",
    "most-confident-labels.png",
    "images-by-miou.pdf",
    "images-by-confidence.pdf",
    "metrics.json",
    "report-page.json",
    "report.html",
]


def image_bytes(image_format: str, width: int, height: int, boxes: list[list[float]]) -> bytes:
    image = Image.new("RGB", (width, height), (70, 110, 160))
    draw = ImageDraw.Draw(image)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0 * width, y0 * height, x1 * width, y1 * height], fill=(230, 200, 60))
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


class CountingFetch:
    """``fetch(uri) -> bytes`` from a dict, counting the calls per URI."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.calls: Counter[str] = Counter()

    def __call__(self, uri: str) -> bytes:
        self.calls[uri] += 1
        return self.objects[uri]


def build_dataset() -> LabelingDataset:
    images, reference, consolidated, workers = [], [], [], []
    for index, (uri, _, width, height, human, boxes) in enumerate(IMAGES):
        images.append(LabeledImage(index, uri, Path(uri).stem, width, height, human))
        for box in boxes:
            reference.append((index, box, 1.0, -1))
            consolidated.append((index, np.clip(np.add(box, 0.02), 0, 1), CONFIDENCE[index], -1))
            if human:
                for worker in range(3):
                    workers.append((index, np.clip(np.add(box, 0.03 * (worker - 1)), 0, 1), 1.0, worker))

    def table(rows: list) -> BoxTable:
        return BoxTable.build(
            image=[r[0] for r in rows],
            xyxy=[r[1] for r in rows],
            score=[r[2] for r in rows],
            worker=[r[3] for r in rows],
        )

    return LabelingDataset(
        images=images,
        consolidated=table(consolidated),
        workers=table(workers),
        reference=table(reference),
        worker_ids=["worker-a", "worker-b", "worker-c"],
    )


def iterations_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "iteration": [1, 2],
            "human_images": [3, 1],
            "human_boxes": [4, 1],
            "auto_images": [0, 2],
            "auto_boxes": [0, 2],
            "human_cost": [0.564, 0.188],
            "auto_cost": [0.0, 0.16],
        }
    )


def metrics() -> dict:
    return {
        "class_name": HOSTILE_CLASS,
        "images": 6,
        "mean_miou": {"human": {"mean": 0.5625, "images": 4}, "auto": {"mean": float("nan"), "images": 2}},
        "total_cost": np.float64(0.912),
    }


def write_report(store: LocalObjectStore, fetch: CountingFetch, **overrides) -> ReportFiles:
    arguments = {
        "dataset": build_dataset(),
        "miou": MIOU,
        "confidence": CONFIDENCE,
        "worker_agreement": WORKER_AGREEMENT,
        "iterations": iterations_frame(),
        "training_curves": [("iteration 2", [0.1, 0.25, 0.4, 0.45])],
        "confidence_curve": {
            "Human": (np.array([100.0, 50.0, 25.0]), np.array([0.56, 0.8, 0.9])),
            "Auto": (np.array([100.0, 50.0]), np.array([0.6, 0.8])),
        },
        "metrics": metrics(),
        "fetch": fetch,
        "class_name": HOSTILE_CLASS,
    }
    return write_analysis_report(store, PREFIX, **(arguments | overrides))


def image_objects() -> dict[str, bytes]:
    objects = {uri: image_bytes(fmt, w, h, boxes) for uri, fmt, w, h, _, boxes in IMAGES}
    objects[BROKEN_URI] = objects[BROKEN_URI][:300]  # a download cut short
    return objects


@dataclass(frozen=True)
class WrittenReport:
    store: LocalObjectStore
    files: ReportFiles
    fetch: CountingFetch


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> WrittenReport:
    store = LocalObjectStore(tmp_path_factory.mktemp("store"))
    fetch = CountingFetch(image_objects())
    return WrittenReport(store, write_report(store, fetch), fetch)


def test_every_expected_file_is_written_under_the_prefix(report: WrittenReport) -> None:
    expected = [f"{PREFIX}/{name}" for name in EXPECTED_FILES]
    assert report.files.keys == tuple(expected)
    assert list(report.store.list_keys(PREFIX)) == sorted(expected)


def test_html_is_written_last_so_its_presence_means_the_report_is_complete(report: WrittenReport) -> None:
    assert report.files.keys[-1] == f"{PREFIX}/report.html"


def test_pngs_decode_with_sane_sizes(report: WrittenReport) -> None:
    for key in report.files.keys:
        if key.endswith(".png"):
            with Image.open(io.BytesIO(report.store.read_bytes(key))) as image:
                assert image.format == "PNG"
                width, height = image.size
                assert 300 <= width <= 2000, key
                assert 100 <= height <= 2000, key


def test_pdfs_have_a_title_page_then_a_title_page_and_a_grid_page_per_section(report: WrittenReport) -> None:
    for name in ("images-by-miou.pdf", "images-by-confidence.pdf"):
        document = report.store.read_bytes(f"{PREFIX}/{name}")
        assert document.startswith(b"%PDF")
        assert len(PDF_PAGE.findall(document)) == 1 + 3 * 2, name


def test_metrics_json_round_trips_with_null_for_nan(report: WrittenReport) -> None:
    text = report.store.read_bytes(f"{PREFIX}/metrics.json").decode("utf-8")
    parsed = json.loads(text)
    assert parsed["mean_miou"]["auto"]["mean"] is None
    assert parsed["total_cost"] == pytest.approx(0.912)
    assert parsed["class_name"] == HOSTILE_CLASS
    assert "NaN" not in text
    assert text == json.dumps(parsed, sort_keys=True, indent=2) + "\n"


def test_html_embeds_every_figure_as_a_data_uri(report: WrittenReport) -> None:
    html = report.store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    pngs = [key for key in report.files.keys if key.endswith(".png")]
    assert len(embedded) == len(pngs)
    assert base64.b64decode(embedded[0]) == report.store.read_bytes(pngs[0])


def test_html_has_metric_tables_pdf_links_and_sections_in_workflow_order(report: WrittenReport) -> None:
    html = report.store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    assert "<caption>mean_miou</caption>" in html
    assert "<td>human</td>" in html
    assert '<td class="number">0.5625</td>' in html
    assert "<caption>Per iteration</caption>" in html
    assert 'href="images-by-miou.pdf"' in html
    assert 'href="images-by-confidence.pdf"' in html
    headings = re.findall(r"<h2>(.*?)</h2>", html)
    assert headings.index("Cost and counts per iteration") < headings.index("Active-learning training")
    assert headings.index("Labeled examples") < headings.index("Agreement with the reference boxes")


def test_the_labeling_page_says_the_model_sections_are_still_to_come(report: WrittenReport) -> None:
    html = report.store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    headings = [unescape(heading) for heading in re.findall(r"<h2>(.*?)</h2>", html)]
    assert headings[-4:] == [
        "Most confident labels",
        "Trained model and predictions",
        "Every image, sorted",
        "Images that could not be drawn",
    ]
    assert section_texts(html)["Trained model and predictions"].startswith("Still to come: the model trained")
    page = json.loads(report.store.read_bytes(f"{PREFIX}/report-page.json"))
    assert [section["title"] for section in page["sections"]] == headings[:-3]
    assert [section["title"] for section in page["appendix"]] == headings[-2:]


def test_the_last_task_completes_the_analysis_page(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    fetch = CountingFetch(image_objects())
    analysis = write_report(store, fetch)
    test_image = IMAGES[0][0]
    complete_run_report(
        store,
        PREFIX,
        model=TrainedModel("train-job", [0.1, 0.2], {"status": "Completed"}),
        batch=[ImagePredictions(test_image, [[0, 0.8, 0.1, 0.2, 0.5, 0.7]])],
        endpoint=EndpointAnswer(
            "endpoint", ImagePredictions(test_image, [[0, 0.7, 0.1, 0.2, 0.5, 0.7]]), "../p/r.json"
        ),
        class_names=[HOSTILE_CLASS],
        fetch=fetch,
        title="Labeling, training and predictions: Bird",
    )
    html = store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    headings = [unescape(heading) for heading in re.findall(r"<h2>(.*?)</h2>", html)]
    assert headings[-6:] == [
        "Most confident labels",
        "Trained model",
        "Batch transform",
        "Real-time endpoint",
        "Every image, sorted",
        "Images that could not be drawn",
    ]
    analysis_pngs = [key for key in analysis.keys if key.endswith(".png")]
    assert len(re.findall(r'src="data:image/png;base64,', html)) == len(analysis_pngs) + 3
    assert "Still to come" not in html
    assert "<script>" not in html
    assert "1 of 6 images could not be read" in html
    assert f"{IMAGES[0][0]} " not in section_texts(html)["Batch transform"]  # images are named by file
    assert "a.jpg 1 1 0.8" in section_texts(html)["Batch transform"]


def test_html_escapes_a_hostile_class_name(report: WrittenReport) -> None:
    html = report.store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;owned&#34;)&lt;/script&gt; &amp; Bird" in html


def test_each_image_is_fetched_exactly_once(report: WrittenReport) -> None:
    assert report.fetch.calls == Counter({uri: 1 for uri, *_ in IMAGES})


def test_a_corrupt_image_is_reported_and_the_report_completes(report: WrittenReport) -> None:
    assert list(report.files.unreadable_images) == [BROKEN_URI]
    assert report.files.unreadable_images[BROKEN_URI].startswith("OSError: ")
    html = report.store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    assert "1 of 6 images could not be read" in html
    assert f"<td>{BROKEN_URI}</td>" in html


def test_without_automated_labeling_the_report_still_has_every_file(tmp_path: Path) -> None:
    dataset = build_dataset()
    human_only = LabelingDataset(
        images=[image for image in dataset.images if image.human_annotated],
        consolidated=dataset.consolidated.select(dataset.consolidated.image < 4),
        workers=dataset.workers,
        reference=dataset.reference.select(dataset.reference.image < 4),
        worker_ids=dataset.worker_ids,
    )
    store = LocalObjectStore(tmp_path)
    files = write_report(
        store,
        CountingFetch(image_objects()),
        dataset=human_only,
        miou=MIOU[:4],
        confidence=CONFIDENCE[:4],
        worker_agreement=WORKER_AGREEMENT[:4],
        iterations=iterations_frame().iloc[:1],
        training_curves=[],
        confidence_curve={"Human": (np.array([100.0]), np.array([0.56]))},
        images_per_pdf_section=2,
    )
    assert [key.removeprefix(f"{PREFIX}/") for key in files.keys] == EXPECTED_FILES
    # Title page, then a title page and one grid page for each human section; the empty Auto section has a
    # title page only.
    assert len(PDF_PAGE.findall(store.read_bytes(f"{PREFIX}/images-by-miou.pdf"))) == 1 + 2 + 2 + 1


def test_a_job_without_images_or_iterations_still_gets_every_file(tmp_path: Path) -> None:
    empty = LabelingDataset([], BoxTable.empty(), BoxTable.empty(), BoxTable.empty(), [])
    fetch = CountingFetch({})
    files = write_report(
        LocalObjectStore(tmp_path),
        fetch,
        dataset=empty,
        miou=np.zeros(0),
        confidence=np.zeros(0),
        worker_agreement=np.zeros(0),
        iterations=iterations_frame().iloc[:0],
        training_curves=[],
        confidence_curve={},
    )
    assert [key.removeprefix(f"{PREFIX}/") for key in files.keys] == EXPECTED_FILES
    assert not fetch.calls
    assert files.unreadable_images == {}


def test_inputs_are_checked_before_any_image_is_fetched(tmp_path: Path) -> None:
    fetch = CountingFetch(image_objects())
    with pytest.raises(
        ValueError, match=r"miou has shape \(5,\), expected one value per dataset image: \(6,\)"
    ):
        write_report(LocalObjectStore(tmp_path), fetch, miou=MIOU[:5])
    with pytest.raises(ValueError, match="iterations lacks the columns auto_cost"):
        write_report(
            LocalObjectStore(tmp_path), fetch, iterations=iterations_frame().drop(columns="auto_cost")
        )
    with pytest.raises(ValueError, match="images per section must be at least 1, got 0"):
        write_report(LocalObjectStore(tmp_path), fetch, images_per_pdf_section=0)
    with pytest.raises(ValueError, match="sample images must not be negative, got -1"):
        write_report(LocalObjectStore(tmp_path), fetch, samples_per_group=-1)
    assert not fetch.calls
    assert not list(LocalObjectStore(tmp_path).list_keys(""))


WITHOUT_REFERENCE_FILES = [
    name
    for name in EXPECTED_FILES
    if "miou" not in name  # the mIoU histogram, extremes, confidence vs mIoU and the PDF sorted by mIoU
]
NO_REFERENCE_TEXT = (
    "No reference boxes: this run labeled your own images, so there is nothing to compare the labels with."
)


def metrics_without_reference() -> dict:
    return {
        "images": 6,
        "reference_boxes": False,
        "mean_image_miou": {"all": None, "human": None, "auto": None},
        "detection_vs_reference": {"ap50": None, "precision": None},
        "worker_agreement": {"mean_worker_miou_with_consolidated": 0.5625, "images": 4},
    }


def section_texts(html: str) -> dict[str, str]:
    """Each section's visible text by its heading, as a reader of the page sees it."""
    sections = re.findall(r"<section[^>]*>\s*<h2>(.*?)</h2>(.*?)</section>", html, flags=re.DOTALL)
    return {
        unescape(title): " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split()) for title, body in sections
    }


@pytest.fixture(scope="module")
def report_without_reference(tmp_path_factory: pytest.TempPathFactory) -> WrittenReport:
    dataset = replace(build_dataset(), reference=BoxTable.empty())
    store = LocalObjectStore(tmp_path_factory.mktemp("own-images"))
    fetch = CountingFetch(image_objects())
    files = write_report(
        store, fetch, dataset=dataset, miou=None, confidence_curve={}, metrics=metrics_without_reference()
    )
    return WrittenReport(store, files, fetch)


def test_without_reference_boxes_the_comparisons_are_left_out(
    report_without_reference: WrittenReport,
) -> None:
    written = [key.removeprefix(f"{PREFIX}/") for key in report_without_reference.files.keys]
    assert written == WITHOUT_REFERENCE_FILES
    assert "worker-agreement.png" in written and "images-by-confidence.pdf" in written


def test_without_reference_boxes_the_html_says_there_are_none(
    report_without_reference: WrittenReport,
) -> None:
    html = report_without_reference.store.read_bytes(f"{PREFIX}/report.html").decode("utf-8")
    sections = section_texts(html)
    assert sections["Agreement with the reference boxes"] == NO_REFERENCE_TEXT
    assert sections["Confidence and quality"].startswith(NO_REFERENCE_TEXT)
    assert NO_REFERENCE_TEXT in sections["Summary"]
    assert "There is no PDF sorted by mIoU" in sections["Every image, sorted"]
    assert "images-by-miou.pdf" not in html
    assert "No reference boxes (your own images)." in html
    assert "reference (Open Images) boxes" not in html
    # The mIoU figures are n/a in the tables, never a measured-looking 0.
    assert "mean_image_miou" in sections["Summary"]
    assert "<tr><td>all</td><td>n/a</td></tr>" in html
    assert "<tr><td>ap50</td><td>n/a</td></tr>" in html
    assert "0.5625" in sections["Summary"]


def test_without_reference_boxes_the_pdf_shows_worker_and_consolidated_labels_only(
    report_without_reference: WrittenReport,
) -> None:
    document = report_without_reference.store.read_bytes(f"{PREFIX}/images-by-confidence.pdf")
    assert len(PDF_PAGE.findall(document)) == 1 + 3 * 2
    assert report_without_reference.fetch.calls == Counter({uri: 1 for uri, *_ in IMAGES})


def test_an_miou_curve_without_miou_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="confidence_curve is an mIoU curve, but there is no mIoU"):
        write_report(LocalObjectStore(tmp_path), CountingFetch(image_objects()), miou=None)


def test_prediction_report_from_a_uri_and_from_bytes(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    objects = image_objects()
    fetch = CountingFetch(objects)
    predictions = [[0, 0.91, 0.1, 0.2, 0.5, 0.7], [0, 0.05, 0.0, 0.0, 1.0, 1.0]]
    from_uri = write_prediction_report(
        store, "exp/predictions", IMAGES[0][0], predictions, title="Batch transform: a", fetch=fetch
    )
    from_bytes = write_prediction_report(
        store,
        "exp/predictions",
        objects[IMAGES[0][0]],
        predictions,
        title="Endpoint: a",
        class_names=["Bird"],
    )
    assert from_uri.keys == ("exp/predictions/batch-transform-a.png",)
    assert from_bytes.keys == ("exp/predictions/endpoint-a.png",)
    assert from_uri.boxes_drawn == from_bytes.boxes_drawn == 1
    assert fetch.calls == Counter({IMAGES[0][0]: 1})
    with Image.open(io.BytesIO(store.read_bytes(from_uri.keys[0]))) as image:
        assert image.size == (700, 600)


def test_prediction_report_of_an_unreadable_image_names_it(tmp_path: Path) -> None:
    files = write_prediction_report(
        LocalObjectStore(tmp_path),
        "p",
        b"garbage",
        [[0, 0.9, 0.1, 0.1, 0.5, 0.5]],
        title="Endpoint",
        filename="endpoint.png",
    )
    assert files.keys == ("p/endpoint.png",)
    assert list(files.unreadable_images) == ["Endpoint"]
    assert files.boxes_drawn == 0


def test_prediction_report_needs_fetch_for_a_uri(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"got the image URI 's3://b/k\.jpg' but no fetch"):
        write_prediction_report(LocalObjectStore(tmp_path), "p", "s3://b/k.jpg", [], title="Batch")
