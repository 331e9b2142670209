"""The reports of a pipeline run: plots, sorted PDFs, metrics JSON and one HTML page, which the analysis
writes for the labeling and the run's last task completes with the trained model and its predictions.

Everything is drawn headless on ``matplotlib.figure.Figure`` objects and written through an ``ObjectStore``.
"""

from ground_truth_pipeline.reports.run_report import (
    EndpointAnswer,
    ImagePredictions,
    RunReport,
    TrainedModel,
    complete_run_report,
)
from ground_truth_pipeline.reports.writer import (
    PredictionReport,
    ReportFiles,
    write_analysis_report,
    write_prediction_report,
)

__all__ = [
    "EndpointAnswer",
    "ImagePredictions",
    "PredictionReport",
    "ReportFiles",
    "RunReport",
    "TrainedModel",
    "complete_run_report",
    "write_analysis_report",
    "write_prediction_report",
]
