"""The analysis reports of a pipeline run: plots, sorted PDFs, metrics JSON and one HTML page.

Everything is drawn headless on ``matplotlib.figure.Figure`` objects and written through an ``ObjectStore``.
"""

from ground_truth_pipeline.reports.writer import (
    PredictionReport,
    ReportFiles,
    write_analysis_report,
    write_prediction_report,
)

__all__ = ["PredictionReport", "ReportFiles", "write_analysis_report", "write_prediction_report"]
