"""Draw a run's analysis and write it through an ObjectStore: PNGs, sorted PDFs, metrics.json, report.html.

Every image is fetched at most once per call: the images each figure shows are chosen first, prefetched in
parallel into one ``ImageCache``, and every figure and PDF draws from that cache. ``report.html`` is
written last, so its presence means the whole report is there.

The labeling's sections are also kept as ``report-page.json`` (figures by file name): the run's last task
adds the trained model and its predictions to them (``run_report``) and writes ``report.html`` again.
Until then the page says that those sections are still to come.

A run without reference boxes (``miou`` None: a team's own images) gets no figure or PDF that compares with
them; the report's sections about them say that there is nothing to compare with.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ground_truth_pipeline.boxes import LabelingDataset
from ground_truth_pipeline.experiment import slugify
from ground_truth_pipeline.object_store import ObjectStore
from ground_truth_pipeline.reports import charts, image_grids
from ground_truth_pipeline.reports.drawing import figure_png
from ground_truth_pipeline.reports.html_report import (
    HtmlCell,
    HtmlFigure,
    HtmlLink,
    HtmlSection,
    HtmlTable,
    ReportPage,
    frame_table,
    metrics_tables,
)
from ground_truth_pipeline.reports.image_cache import (
    DEFAULT_MAX_SIDE,
    Fetch,
    ImageCache,
    ImageFailure,
    load_thumbnail,
)
from ground_truth_pipeline.reports.image_grids import MOST_CONFIDENT_IMAGES
from ground_truth_pipeline.reports.inputs import AnalysisInputs
from ground_truth_pipeline.reports.metrics_json import metrics_json_bytes
from ground_truth_pipeline.reports.pdf_pages import (
    DEFAULT_IMAGES_PER_SECTION,
    pdf_sections,
    sorted_images_pdf,
)
from ground_truth_pipeline.reports.predictions import (
    DEFAULT_SCORE_THRESHOLD,
    PredictionRow,
    prediction_figure,
    predictions_above_threshold,
)
from ground_truth_pipeline.reports.selection import (
    ImageGroup,
    labeling_groups,
    most_confident,
    random_sample,
    ranked,
)

log = logging.getLogger(__name__)

PNG = "image/png"
PDF = "application/pdf"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
METRICS_FILENAME = "metrics.json"
HTML_FILENAME = "report.html"
PAGE_FILENAME = "report-page.json"
MOST_CONFIDENT_FILENAME = "most-confident-labels.png"
MIOU_PDF_FILENAME = "images-by-miou.pdf"
CONFIDENCE_PDF_FILENAME = "images-by-confidence.pdf"
EXTREME_IMAGES = 6
EXTREMES = ("highest", "lowest")
DEFAULT_SAMPLES_PER_GROUP = 5
NO_REFERENCE = (
    "No reference boxes: this run labeled your own images, so there is nothing to compare the labels with."
)
PREDICTION_MAX_SIDE = 800
RUN_SECTIONS_TO_COME = HtmlSection(
    "Trained model and predictions",
    "Still to come: the model trained on these labels, its batch transform and its real-time endpoint are "
    "added to this page at the end of the run.",
)


@dataclass(frozen=True)
class ReportFiles:
    """The keys a report wrote, in the order written, and the images it could not draw (URI to error)."""

    keys: tuple[str, ...]
    unreadable_images: Mapping[str, str]


@dataclass(frozen=True)
class PredictionReport:
    """The plot a prediction report wrote, the boxes drawn on it (those above the threshold; none when the
    image could not be read, which ``unreadable_images`` then names)."""

    keys: tuple[str, ...]
    boxes_drawn: int
    unreadable_images: Mapping[str, str]


@dataclass(frozen=True)
class _ImagePlan:
    """Which images each image figure shows (indices into ``dataset.images``); no mIoU extremes without
    reference boxes."""

    human_samples: np.ndarray
    auto_samples: np.ndarray
    extremes: dict[tuple[str, str], np.ndarray]  # (group name, "highest" | "lowest") to images
    most_confident: tuple[ImageGroup, ...]  # per group, its most confident images, most confident first

    def all_images(self) -> np.ndarray:
        return np.concatenate(
            [
                self.human_samples,
                self.auto_samples,
                *self.extremes.values(),
                *(group.indices for group in self.most_confident),
            ]
        )


def write_analysis_report(
    store: ObjectStore,
    key_prefix: str,
    *,
    dataset: LabelingDataset,
    miou: np.ndarray | None,
    confidence: np.ndarray,
    worker_agreement: np.ndarray,
    iterations: pd.DataFrame,
    training_curves: Sequence[tuple[str, Sequence[float]]],
    confidence_curve: Mapping[str, tuple[np.ndarray, np.ndarray]],
    metrics: Mapping[str, Any],
    fetch: Fetch,
    class_name: str,
    samples_per_group: int = DEFAULT_SAMPLES_PER_GROUP,
    images_per_pdf_section: int = DEFAULT_IMAGES_PER_SECTION,
    thumbnail_max_side: int = DEFAULT_MAX_SIDE,
    sample_seed: int = 0,
) -> ReportFiles:
    """Draw the whole analysis of a labeling job and write it under ``key_prefix``.

    ``miou`` is None for a run without reference boxes; ``confidence_curve`` must then be empty.
    """
    inputs = AnalysisInputs(
        dataset=dataset,
        miou=miou,
        confidence=confidence,
        worker_agreement=worker_agreement,
        iterations=iterations,
        training_curves=training_curves,
        confidence_curve=confidence_curve,
        metrics=metrics,
        class_name=class_name,
    )
    metrics_document = metrics_json_bytes(inputs.metrics)
    plan = _plan_images(inputs, samples_per_group, sample_seed)
    orderings = _pdf_orderings(inputs)
    pdf_images = [
        section.images
        for _, values, _ in orderings
        for section in pdf_sections(dataset, values, images_per_pdf_section, inputs.has_reference)
    ]
    uris = [dataset.images[i].source_ref for i in np.concatenate([plan.all_images(), *pdf_images])]
    with ImageCache(fetch, max_side=thumbnail_max_side) as cache:
        cache.prefetch(uris)
        figures = _draw_figures(inputs, cache, plan)
        pdfs = {
            filename: sorted_images_pdf(
                dataset,
                cache,
                values,
                metric_name,
                class_name,
                images_per_pdf_section,
                with_reference=inputs.has_reference,
            )
            for filename, values, metric_name in orderings
        }
        failures = cache.failures
    if failures:
        log.warning("%d of the report's images could not be drawn", len(failures))
    page = _report_page(inputs, figures, failures, len(set(uris)), images_per_pdf_section)
    html = page.with_sections([RUN_SECTIONS_TO_COME]).render()
    outputs = [
        *((name, figure.png, PNG) for name, figure in figures.items()),
        *((name, document, PDF) for name, document in pdfs.items()),
        (METRICS_FILENAME, metrics_document, JSON),
        (PAGE_FILENAME, page.to_json(), JSON),
        (HTML_FILENAME, html.encode("utf-8"), HTML),
    ]
    keys = []
    for name, data, content_type in outputs:
        key = report_key(key_prefix, name)
        store.write_bytes(key, data, content_type=content_type)
        keys.append(key)
    return ReportFiles(keys=tuple(keys), unreadable_images=failures)


def write_prediction_report(
    store: ObjectStore,
    key_prefix: str,
    image: bytes | str,
    predictions: Sequence[PredictionRow] | np.ndarray,
    *,
    title: str,
    threshold: float = DEFAULT_SCORE_THRESHOLD,
    fetch: Fetch | None = None,
    class_names: Sequence[str] = (),
    filename: str | None = None,
) -> PredictionReport:
    """Plot one image's predictions above ``threshold`` and write the PNG under ``key_prefix``.

    ``image`` is the image's bytes, or its URI together with ``fetch``. The file is named ``filename``, by
    default the slug of ``title`` (so batch and real-time plots of one run sit side by side).
    """
    boxes = predictions_above_threshold(predictions, threshold)
    if isinstance(image, str):
        if fetch is None:
            raise ValueError(
                f"write_prediction_report got the image URI {image!r} but no fetch to read it with"
            )
        thumbnail = load_thumbnail(image, fetch, PREDICTION_MAX_SIDE)
    else:
        image_bytes = image
        thumbnail = load_thumbnail(title, lambda _: image_bytes, PREDICTION_MAX_SIDE)
    png = figure_png(prediction_figure(thumbnail, boxes, threshold, title, class_names))
    key = report_key(key_prefix, filename or f"{slugify(title, max_length=80) or 'predictions'}.png")
    store.write_bytes(key, png, content_type=PNG)
    if isinstance(thumbnail, ImageFailure):
        return PredictionReport(
            keys=(key,), boxes_drawn=0, unreadable_images={thumbnail.uri: thumbnail.error}
        )
    return PredictionReport(keys=(key,), boxes_drawn=len(boxes), unreadable_images={})


def report_key(key_prefix: str, filename: str) -> str:
    prefix = key_prefix.strip("/")
    return f"{prefix}/{filename}" if prefix else filename


def _pdf_orderings(inputs: AnalysisInputs) -> list[tuple[str, np.ndarray, str]]:
    """(file name, per-image values, metric name) of each sorted PDF: by mIoU only with reference boxes."""
    by_confidence = (CONFIDENCE_PDF_FILENAME, inputs.confidence, "confidence")
    if inputs.miou is None:
        return [by_confidence]
    return [(MIOU_PDF_FILENAME, inputs.miou, "mIoU"), by_confidence]


def _subtitle(inputs: AnalysisInputs) -> str:
    dataset = inputs.dataset
    counts = (
        f"{len(dataset.images)} images: {inputs.human_count} labeled by humans, "
        f"{inputs.auto_count} by automated labeling, {int(dataset.failed_mask.sum())} failed"
    )
    return counts if inputs.has_reference else f"{counts}. No reference boxes (your own images)."


def _plan_images(inputs: AnalysisInputs, samples_per_group: int, seed: int) -> _ImagePlan:
    human, auto = labeling_groups(inputs.dataset)
    return _ImagePlan(
        human_samples=random_sample(human.indices, samples_per_group, seed),
        auto_samples=random_sample(auto.indices, samples_per_group, seed),
        extremes=_miou_extremes(inputs.miou, (human, auto)) if inputs.miou is not None else {},
        most_confident=tuple(
            ImageGroup(group.name, most_confident(group.indices, inputs.confidence, MOST_CONFIDENT_IMAGES))
            for group in (human, auto)
        ),
    )


def _miou_extremes(miou: np.ndarray, groups: Sequence[ImageGroup]) -> dict[tuple[str, str], np.ndarray]:
    return {
        (group.name, extreme): ranked(group.indices, miou, descending=extreme == "highest")[:EXTREME_IMAGES]
        for group in groups
        for extreme in EXTREMES
    }


def _draw_figures(inputs: AnalysisInputs, cache: ImageCache, plan: _ImagePlan) -> dict[str, HtmlFigure]:
    """Every figure of the report as PNG, by file name, with the caption the HTML shows under it.

    The figures that compare with reference boxes are drawn only when the run has them.
    """
    dataset = inputs.dataset
    figures: dict[str, HtmlFigure] = {}

    def add(name: str, caption: str, figure: Figure) -> None:
        figures[name] = HtmlFigure(caption, figure_png(figure), name)

    add(
        "cost-and-counts.png",
        "Cost, images and boxes per iteration, human and automated labeling stacked.",
        charts.cost_and_counts_figure(inputs.iterations),
    )
    add(
        "training-curves.png",
        "Validation mAP per epoch of each active-learning model.",
        charts.training_curves_figure(inputs.training_curves),
    )
    reference = " and the reference (Open Images) boxes" if inputs.has_reference else ""
    add(
        "human-samples.png",
        f"A random sample of human-labeled images: each worker's boxes in its own colour, the consolidated "
        f"label{reference}.",
        image_grids.human_samples_figure(dataset, cache, plan.human_samples, inputs.has_reference),
    )
    add(
        "auto-samples.png",
        f"A random sample of auto-labeled images: the auto label{reference}.",
        image_grids.auto_samples_figure(dataset, cache, plan.auto_samples, inputs.has_reference),
    )
    add(
        "box-counts.png",
        "How many boxes the images have, and how confident the labels are by box count.",
        charts.box_count_figure(dataset, inputs.confidence),
    )
    add(
        "worker-agreement.png",
        "How closely each worker's boxes match the consolidated label (mIoU, averaged over the image's "
        "workers who drew a box), and whether the label's confidence agrees.",
        charts.worker_agreement_figure(dataset, inputs.worker_agreement, inputs.confidence),
    )
    if inputs.miou is not None:
        _draw_reference_figures(inputs, inputs.miou, cache, plan, add)
    reference = ", over the reference boxes in green" if inputs.has_reference else ""
    add(
        MOST_CONFIDENT_FILENAME,
        f"The {MOST_CONFIDENT_IMAGES} human-labeled and the {MOST_CONFIDENT_IMAGES} machine-labeled images "
        f"whose labels are the most confident (mean box confidence): labels in orange{reference}.",
        image_grids.most_confident_figure(
            dataset, cache, inputs.confidence, plan.most_confident, inputs.has_reference
        ),
    )
    return figures


def _draw_reference_figures(
    inputs: AnalysisInputs,
    miou: np.ndarray,
    cache: ImageCache,
    plan: _ImagePlan,
    add: Callable[[str, str, Figure], None],
) -> None:
    """The figures that compare the labels with the reference boxes."""
    dataset = inputs.dataset
    add(
        "miou-histogram.png",
        "Per-image mIoU of the labels against the reference boxes.",
        charts.miou_histogram_figure(dataset, miou),
    )
    for (group, extreme), images in plan.extremes.items():
        add(
            _extremes_filename(group, extreme),
            f"{group}-labeled images with the {extreme} mIoU: labels in orange, reference boxes in green.",
            image_grids.miou_extremes_figure(dataset, cache, miou, images, group, extreme),
        )
    add(
        "confidence-vs-miou.png",
        "Whether confidence predicts quality: mIoU against confidence, and the mIoU of the most confident "
        "images.",
        charts.confidence_vs_miou_figure(dataset, miou, inputs.confidence, inputs.confidence_curve),
    )


def _extremes_filename(group: str, extreme: str) -> str:
    return f"{group.lower()}-{extreme}-miou.png"


def _report_page(
    inputs: AnalysisInputs,
    figures: dict[str, HtmlFigure],
    failures: Mapping[str, str],
    images_drawn: int,
    images_per_pdf_section: int,
) -> ReportPage:
    """The labeling's sections in the order of the workflow (cost, training, labels, quality), then the
    files and the images that could not be drawn."""

    def pick(*names: str) -> tuple[HtmlFigure, ...]:
        return tuple(figures[name] for name in names)

    summary = "The metrics of this run, as written to metrics.json."
    if not inputs.has_reference:
        summary += f" {NO_REFERENCE} Its mIoU and detection metrics are null (n/a)."
    sections = (
        HtmlSection("Summary", summary, metrics_tables(inputs.metrics)),
        HtmlSection(
            "Cost and counts per iteration",
            tables=(frame_table("Per iteration", inputs.iterations),),
            figures=pick("cost-and-counts.png"),
        ),
        HtmlSection("Active-learning training", figures=pick("training-curves.png")),
        HtmlSection("Labeled examples", figures=pick("human-samples.png", "auto-samples.png")),
        HtmlSection("Boxes per image", figures=pick("box-counts.png")),
        HtmlSection("Worker agreement", figures=pick("worker-agreement.png")),
        *_reference_sections(inputs, pick),
        HtmlSection("Most confident labels", figures=pick(MOST_CONFIDENT_FILENAME)),
    )
    return ReportPage(
        title=f"Labeling analysis: {inputs.class_name}",
        subtitle=_subtitle(inputs),
        sections=sections,
        appendix=(_files_section(inputs, images_per_pdf_section), _failure_section(failures, images_drawn)),
    )


def _reference_sections(
    inputs: AnalysisInputs, pick: Callable[..., tuple[HtmlFigure, ...]]
) -> list[HtmlSection]:
    """Agreement with the reference boxes and whether confidence predicts it, or that there is none."""
    if not inputs.has_reference:
        return [
            HtmlSection("Agreement with the reference boxes", NO_REFERENCE),
            HtmlSection(
                "Confidence and quality",
                f"{NO_REFERENCE} Whether confidence predicts quality cannot be measured; the worker "
                "agreement above is set against confidence instead.",
            ),
        ]
    extremes = [_extremes_filename(group, extreme) for group in ("Human", "Auto") for extreme in EXTREMES]
    return [
        HtmlSection("Agreement with the reference boxes", figures=pick("miou-histogram.png", *extremes)),
        HtmlSection("Confidence and quality", figures=pick("confidence-vs-miou.png")),
    ]


def _files_section(inputs: AnalysisInputs, images_per_pdf_section: int) -> HtmlSection:
    text = (
        f"Worker, consolidated human and auto labels, 25 images to a page and at most "
        f"{images_per_pdf_section} images per section."
    )
    links = [HtmlLink("Images sorted by confidence (PDF)", CONFIDENCE_PDF_FILENAME)]
    if inputs.has_reference:
        links.insert(0, HtmlLink("Images sorted by mIoU (PDF)", MIOU_PDF_FILENAME))
    else:
        text += " There is no PDF sorted by mIoU: the run has no reference boxes."
    links.append(HtmlLink("Metrics (JSON)", METRICS_FILENAME))
    return HtmlSection("Every image, sorted", text, links=tuple(links))


def _failure_section(failures: Mapping[str, str], images_drawn: int) -> HtmlSection:
    if not failures:
        return HtmlSection("Images that could not be drawn", f"None: all {images_drawn} images were read.")
    return HtmlSection(
        "Images that could not be drawn",
        f"{len(failures)} of {images_drawn} images could not be read; they appear as grey placeholders.",
        tables=(
            HtmlTable(
                "Unreadable images",
                ("Image", "Error"),
                tuple((HtmlCell(uri), HtmlCell(error)) for uri, error in sorted(failures.items())),
            ),
        ),
    )
