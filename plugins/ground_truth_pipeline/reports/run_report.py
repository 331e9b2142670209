"""The rest of a run's report: the trained model, its batch transform and its real-time endpoint.

The analysis task writes the labeling's report and keeps its sections as ``report-page.json``. The run's
last task calls ``complete_run_report`` with what the training job logged and what the batch transform and
the endpoint answered: it draws three figures next to the analysis's, adds their sections after the
labeling's and writes ``report.html`` again, last, so that the page is whole whenever it is there. The kept
page is left as it is, so a re-run of the last task draws the same report.

Predictions are drawn with the names of the label categories, whose order is the class id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from ground_truth_pipeline.boxes import BoxTable
from ground_truth_pipeline.object_store import ObjectStore
from ground_truth_pipeline.reports import charts
from ground_truth_pipeline.reports.drawing import counted, figure_png
from ground_truth_pipeline.reports.html_report import (
    HtmlCell,
    HtmlFigure,
    HtmlLink,
    HtmlSection,
    HtmlTable,
    ReportPage,
    cell,
)
from ground_truth_pipeline.reports.image_cache import Fetch, ImageCache
from ground_truth_pipeline.reports.predictions import (
    DEFAULT_SCORE_THRESHOLD,
    PREDICTION_FIELDS,
    PredictionPanel,
    PredictionRow,
    class_name,
    prediction_figure,
    predictions_above_threshold,
    predictions_grid_figure,
)
from ground_truth_pipeline.reports.writer import (
    HTML,
    HTML_FILENAME,
    PAGE_FILENAME,
    PNG,
    PREDICTION_MAX_SIDE,
    report_key,
)

VALIDATION_MAP_FILENAME = "model-validation-map.png"
BATCH_FILENAME = "batch-predictions.png"
ENDPOINT_FILENAME = "endpoint-predictions.png"
DEFAULT_BATCH_IMAGES_SHOWN = 6


@dataclass(frozen=True)
class TrainedModel:
    """The run's training job: its validation mAP per epoch as logged, and the facts the report lists
    (status, samples, hyperparameters, ...), in the order given."""

    job_name: str
    validation_map: Sequence[float]
    facts: Mapping[str, Any]


@dataclass(frozen=True)
class ImagePredictions:
    """What the model answered for one image: every ``[class_id, score, xmin, ymin, xmax, ymax]`` row
    (normalised corners), whatever its score."""

    image_uri: str
    predictions: Sequence[PredictionRow] | np.ndarray

    @property
    def name(self) -> str:
        return PurePosixPath(self.image_uri).name


@dataclass(frozen=True)
class EndpointAnswer:
    """The real-time endpoint's answer for one image, and where its response is kept, relative to the
    report (a link)."""

    endpoint_name: str
    answer: ImagePredictions
    response_filename: str


@dataclass(frozen=True)
class RunReport:
    """The keys written, in order (``report.html`` last), and the images that could not be drawn."""

    keys: tuple[str, ...]
    unreadable_images: Mapping[str, str]


def complete_run_report(
    store: ObjectStore,
    key_prefix: str,
    *,
    model: TrainedModel,
    batch: Sequence[ImagePredictions],
    endpoint: EndpointAnswer,
    class_names: Sequence[str],
    fetch: Fetch,
    title: str,
    threshold: float = DEFAULT_SCORE_THRESHOLD,
    batch_images_shown: int = DEFAULT_BATCH_IMAGES_SHOWN,
) -> RunReport:
    """Add the trained model, the batch transform and the endpoint to the report under ``key_prefix``.

    Bad predictions fail before any image is fetched; an image that cannot be read is drawn as a placeholder
    and named in ``unreadable_images``.
    """
    page_key = report_key(key_prefix, PAGE_FILENAME)
    if not store.exists(page_key):
        raise ValueError(
            f"There is no labeling report to complete: {page_key} is missing. The analysis writes it; "
            "an analysis older than this report's last part did not, and running it again does"
        )
    page = ReportPage.from_json(
        store.read_bytes(page_key), lambda filename: store.read_bytes(report_key(key_prefix, filename))
    )
    batch_boxes = [predictions_above_threshold(item.predictions, threshold) for item in batch]
    endpoint_boxes = predictions_above_threshold(endpoint.answer.predictions, threshold)
    shown = list(batch[:batch_images_shown])
    with ImageCache(fetch, max_side=PREDICTION_MAX_SIDE) as cache:
        cache.prefetch([*(item.image_uri for item in shown), endpoint.answer.image_uri])
        panels = [
            PredictionPanel(
                f"{item.name}: {counted(len(boxes), 'box', 'boxes')}", cache.get(item.image_uri), boxes
            )
            for item, boxes in zip(shown, batch_boxes, strict=False)
        ]
        figures = {
            VALIDATION_MAP_FILENAME: HtmlFigure(
                "Validation mAP of the trained model after each epoch, from its training job's log.",
                figure_png(charts.validation_map_figure(model.job_name, model.validation_map)),
                VALIDATION_MAP_FILENAME,
            ),
            BATCH_FILENAME: HtmlFigure(
                f"The batch transform's boxes scoring above {threshold:g}, with class name and score.",
                figure_png(
                    predictions_grid_figure(
                        panels, _batch_heading(len(shown), len(batch), threshold), class_names
                    )
                ),
                BATCH_FILENAME,
            ),
            ENDPOINT_FILENAME: HtmlFigure(
                f"The endpoint's boxes scoring above {threshold:g}, with class name and score.",
                figure_png(
                    prediction_figure(
                        cache.get(endpoint.answer.image_uri),
                        endpoint_boxes,
                        threshold,
                        f"Endpoint {endpoint.endpoint_name}: {endpoint.answer.name}",
                        class_names,
                    )
                ),
                ENDPOINT_FILENAME,
            ),
        }
        failures = cache.failures
    sections = [
        _model_section(model, figures[VALIDATION_MAP_FILENAME]),
        _batch_section(batch, batch_boxes, len(shown), threshold, class_names, figures[BATCH_FILENAME]),
        _endpoint_section(endpoint, endpoint_boxes, threshold, class_names, figures[ENDPOINT_FILENAME]),
    ]
    html = page.with_sections(sections, title=title, subtitle=_subtitle(page.subtitle, model)).render()
    outputs = [*((name, figure.png, PNG) for name, figure in figures.items())]
    outputs.append((HTML_FILENAME, html.encode("utf-8"), HTML))
    keys = []
    for name, data, content_type in outputs:
        key = report_key(key_prefix, name)
        store.write_bytes(key, data, content_type=content_type)
        keys.append(key)
    return RunReport(keys=tuple(keys), unreadable_images=failures)


def _subtitle(labeling: str, model: TrainedModel) -> str:
    values = [value for value in model.validation_map if np.isfinite(value)]
    trained = f"validation mAP {values[-1]:.3f}" if values else "no validation mAP logged"
    return f"{labeling.rstrip('.')}. Model {model.job_name}: {trained}."


def _batch_heading(shown: int, total: int, threshold: float) -> str:
    if shown == total:
        images = f"all {counted(total, 'held-out image')}" if total > 1 else counted(total, "held-out image")
    else:
        images = f"{shown} of {total} held-out images"
    return f"Batch transform: {images}, boxes scoring above {threshold:g}"


def _model_section(model: TrainedModel, figure: HtmlFigure) -> HtmlSection:
    values = np.asarray(model.validation_map, dtype=float)
    rows = [(HtmlCell(str(key)), cell(value)) for key, value in model.facts.items()]
    rows.append((HtmlCell("epochs logged"), cell(len(values))))
    if np.isfinite(values).any():
        best = int(np.nanargmax(values))
        rows.append((HtmlCell("final validation mAP"), cell(float(values[-1]))))
        rows.append((HtmlCell("best validation mAP"), HtmlCell(f"{values[best]:.4f} (epoch {best + 1})")))
    return HtmlSection(
        "Trained model",
        "SageMaker's built-in object-detection algorithm, trained on the labels of this run (and, by "
        "default, of the class's earlier runs); its validation mAP after each epoch, read from the training "
        "job's CloudWatch log.",
        tables=(HtmlTable("Training job", ("Property", "Value"), tuple(rows)),),
        figures=(figure,),
    )


def _batch_section(
    batch: Sequence[ImagePredictions],
    boxes: Sequence[BoxTable],
    shown: int,
    threshold: float,
    class_names: Sequence[str],
    figure: HtmlFigure,
) -> HtmlSection:
    text = (
        f"The model's predictions on the {counted(len(batch), 'held-out image')}, which no worker labeled, "
        f"from a batch transform job. The model answers a fixed number of candidate boxes per image; those "
        f"scoring above {threshold:g} are counted and drawn."
    )
    if shown < len(batch):
        text += f" The first {shown} images are drawn; each image's own plot is under predictions/."
    columns = ("Image", "Candidate boxes", f"Boxes above {threshold:g}", "Highest score", "Classes above")
    rows = tuple(
        (
            HtmlCell(item.name),
            cell(len(item.predictions)),
            cell(len(kept)),
            cell(_highest_score(item.predictions)),
            HtmlCell(_class_counts(kept, class_names)),
        )
        for item, kept in zip(batch, boxes, strict=True)
    )
    return HtmlSection(
        "Batch transform",
        text,
        tables=(HtmlTable("Predictions per held-out image", columns, rows),),
        figures=(figure,),
    )


def _endpoint_section(
    endpoint: EndpointAnswer,
    boxes: BoxTable,
    threshold: float,
    class_names: Sequence[str],
    figure: HtmlFigure,
) -> HtmlSection:
    answer = endpoint.answer
    text = (
        f"The real-time endpoint {endpoint.endpoint_name} answered for {answer.name} with "
        f"{counted(len(answer.predictions), 'candidate box', 'candidate boxes')}, "
        f"{len(boxes)} scoring above {threshold:g}."
    )
    rows = tuple(
        (
            HtmlCell(class_name(int(class_id), class_names)),
            cell(float(score)),
            *(cell(round(float(v), 4)) for v in xyxy),
        )
        for class_id, score, xyxy in zip(boxes.class_id, boxes.score, boxes.xyxy, strict=True)
    )
    columns = ("Class", *(field.replace("_", " ") for field in PREDICTION_FIELDS[1:]))
    return HtmlSection(
        "Real-time endpoint",
        text,
        tables=(
            HtmlTable(
                f"Boxes scoring above {threshold:g}, highest first (corners from 0 to 1)", columns, rows
            ),
        ),
        figures=(figure,),
        links=(HtmlLink("The endpoint's response (JSON)", endpoint.response_filename),),
    )


def _highest_score(predictions: Sequence[PredictionRow] | np.ndarray) -> float | None:
    scores = [float(row[1]) for row in predictions]
    return max(scores) if scores else None


def _class_counts(boxes: BoxTable, class_names: Sequence[str]) -> str:
    if not len(boxes):
        return "none"
    ids, counts = np.unique(boxes.class_id, return_counts=True)
    return ", ".join(f"{class_name(int(i), class_names)} ({n})" for i, n in zip(ids, counts, strict=True))
