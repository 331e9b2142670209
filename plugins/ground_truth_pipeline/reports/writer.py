"""Draw a run's analysis and write it through an ObjectStore: PNGs, sorted PDFs, metrics.json, report.html.

Every image is fetched at most once per call: the images each figure shows are chosen first, prefetched in
parallel into one ``ImageCache``, and every figure and PDF draws from that cache. ``report.html`` is
written last, so its presence means the whole report is there.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
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
    frame_table,
    metrics_tables,
    render_report_html,
)
from ground_truth_pipeline.reports.image_cache import (
    DEFAULT_MAX_SIDE,
    Fetch,
    ImageCache,
    ImageFailure,
    load_thumbnail,
)
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
from ground_truth_pipeline.reports.selection import labeling_groups, random_sample, ranked

log = logging.getLogger(__name__)

PNG = "image/png"
PDF = "application/pdf"
JSON = "application/json"
HTML = "text/html; charset=utf-8"
METRICS_FILENAME = "metrics.json"
HTML_FILENAME = "report.html"
MIOU_PDF_FILENAME = "images-by-miou.pdf"
CONFIDENCE_PDF_FILENAME = "images-by-confidence.pdf"
EXTREME_IMAGES = 6
EXTREMES = ("highest", "lowest")
DEFAULT_SAMPLES_PER_GROUP = 5
PREDICTION_MAX_SIDE = 800


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
    """Which images each image figure shows (indices into ``dataset.images``)."""

    human_samples: np.ndarray
    auto_samples: np.ndarray
    extremes: dict[tuple[str, str], np.ndarray]  # (group name, "highest" | "lowest") to images

    def all_images(self) -> np.ndarray:
        return np.concatenate([self.human_samples, self.auto_samples, *self.extremes.values()])


def write_analysis_report(
    store: ObjectStore,
    key_prefix: str,
    *,
    dataset: LabelingDataset,
    miou: np.ndarray,
    confidence: np.ndarray,
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
    """Draw the whole analysis of a labeling job and write it under ``key_prefix``."""
    inputs = AnalysisInputs(
        dataset=dataset,
        miou=miou,
        confidence=confidence,
        iterations=iterations,
        training_curves=training_curves,
        confidence_curve=confidence_curve,
        metrics=metrics,
        class_name=class_name,
    )
    metrics_document = metrics_json_bytes(inputs.metrics)
    plan = _plan_images(inputs, samples_per_group, sample_seed)
    pdf_images = [
        section.images
        for values in (inputs.miou, inputs.confidence)
        for section in pdf_sections(dataset, values, images_per_pdf_section)
    ]
    uris = [dataset.images[i].source_ref for i in np.concatenate([plan.all_images(), *pdf_images])]
    with ImageCache(fetch, max_side=thumbnail_max_side) as cache:
        cache.prefetch(uris)
        figures = _draw_figures(inputs, cache, plan)
        pdfs = {
            MIOU_PDF_FILENAME: sorted_images_pdf(
                dataset, cache, inputs.miou, "mIoU", class_name, images_per_pdf_section
            ),
            CONFIDENCE_PDF_FILENAME: sorted_images_pdf(
                dataset, cache, inputs.confidence, "confidence", class_name, images_per_pdf_section
            ),
        }
        failures = cache.failures
    if failures:
        log.warning("%d of the report's images could not be drawn", len(failures))
    html = render_report_html(
        title=f"Labeling analysis: {class_name}",
        subtitle=(
            f"{len(dataset.images)} images: {inputs.human_count} labeled by humans, "
            f"{inputs.auto_count} by automated labeling, {int(dataset.failed_mask.sum())} failed"
        ),
        sections=_html_sections(inputs, figures, failures, len(set(uris)), images_per_pdf_section),
    )
    outputs = [
        *((name, figure.png, PNG) for name, figure in figures.items()),
        *((name, document, PDF) for name, document in pdfs.items()),
        (METRICS_FILENAME, metrics_document, JSON),
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


def _plan_images(inputs: AnalysisInputs, samples_per_group: int, seed: int) -> _ImagePlan:
    human, auto = labeling_groups(inputs.dataset)
    extremes = {}
    for group in (human, auto):
        for extreme in EXTREMES:
            ranking = ranked(group.indices, inputs.miou, descending=extreme == "highest")
            extremes[group.name, extreme] = ranking[:EXTREME_IMAGES]
    return _ImagePlan(
        human_samples=random_sample(human.indices, samples_per_group, seed),
        auto_samples=random_sample(auto.indices, samples_per_group, seed),
        extremes=extremes,
    )


def _draw_figures(inputs: AnalysisInputs, cache: ImageCache, plan: _ImagePlan) -> dict[str, HtmlFigure]:
    """Every figure of the report as PNG, by file name, with the caption the HTML shows under it."""
    dataset = inputs.dataset
    figures: dict[str, HtmlFigure] = {}

    def add(name: str, caption: str, figure: Figure) -> None:
        figures[name] = HtmlFigure(caption, figure_png(figure))

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
    add(
        "human-samples.png",
        "A random sample of human-labeled images: each worker's boxes in its own colour, the consolidated "
        "label and the reference (Open Images) boxes.",
        image_grids.human_samples_figure(dataset, cache, plan.human_samples),
    )
    add(
        "auto-samples.png",
        "A random sample of auto-labeled images: the auto label and the reference boxes.",
        image_grids.auto_samples_figure(dataset, cache, plan.auto_samples),
    )
    add(
        "box-counts.png",
        "How many boxes the images have, and how confident the labels are by box count.",
        charts.box_count_figure(dataset, inputs.confidence),
    )
    add(
        "miou-histogram.png",
        "Per-image mIoU of the labels against the reference boxes.",
        charts.miou_histogram_figure(dataset, inputs.miou),
    )
    for (group, extreme), images in plan.extremes.items():
        add(
            _extremes_filename(group, extreme),
            f"{group}-labeled images with the {extreme} mIoU: labels in orange, reference boxes in green.",
            image_grids.miou_extremes_figure(dataset, cache, inputs.miou, images, group, extreme),
        )
    add(
        "confidence-vs-miou.png",
        "Whether confidence predicts quality: mIoU against confidence, and the mIoU of the most confident "
        "images.",
        charts.confidence_vs_miou_figure(dataset, inputs.miou, inputs.confidence, inputs.confidence_curve),
    )
    return figures


def _extremes_filename(group: str, extreme: str) -> str:
    return f"{group.lower()}-{extreme}-miou.png"


def _html_sections(
    inputs: AnalysisInputs,
    figures: dict[str, HtmlFigure],
    failures: Mapping[str, str],
    images_drawn: int,
    images_per_pdf_section: int,
) -> list[HtmlSection]:
    """The report's sections in the order of the workflow: cost, training, labels, quality, files."""

    def pick(*names: str) -> tuple[HtmlFigure, ...]:
        return tuple(figures[name] for name in names)

    extremes = [_extremes_filename(group, extreme) for group in ("Human", "Auto") for extreme in EXTREMES]
    if failures:
        failure_section = HtmlSection(
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
    else:
        failure_section = HtmlSection(
            "Images that could not be drawn", f"None: all {images_drawn} images were read."
        )
    return [
        HtmlSection(
            "Summary", "The metrics of this run, as written to metrics.json.", metrics_tables(inputs.metrics)
        ),
        HtmlSection(
            "Cost and counts per iteration",
            tables=(frame_table("Per iteration", inputs.iterations),),
            figures=pick("cost-and-counts.png"),
        ),
        HtmlSection("Active-learning training", figures=pick("training-curves.png")),
        HtmlSection("Labeled examples", figures=pick("human-samples.png", "auto-samples.png")),
        HtmlSection("Boxes per image", figures=pick("box-counts.png")),
        HtmlSection("Agreement with the reference boxes", figures=pick("miou-histogram.png", *extremes)),
        HtmlSection("Confidence and quality", figures=pick("confidence-vs-miou.png")),
        HtmlSection(
            "Every image, sorted",
            f"Worker, consolidated human and auto labels, 25 images to a page and at most "
            f"{images_per_pdf_section} images per section.",
            links=(
                HtmlLink("Images sorted by mIoU (PDF)", MIOU_PDF_FILENAME),
                HtmlLink("Images sorted by confidence (PDF)", CONFIDENCE_PDF_FILENAME),
                HtmlLink("Metrics (JSON)", METRICS_FILENAME),
            ),
        ),
        failure_section,
    ]
