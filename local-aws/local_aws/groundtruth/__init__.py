"""Ground Truth bounding-box labeling jobs of the local stack, labeled by the simulated public crowd or by the
people of a private workteam in the worker portal.

``check_labeling_job_request`` tells whether the stack can serve a CreateLabelingJob request;
``run_labeling_job`` runs it: inputs from S3, the worker UI template rendered per task with Liquid, the
workers' answers, their consolidation and the output tree in AWS's layout.
"""

from local_aws.groundtruth.errors import LabelingJobFailed
from local_aws.groundtruth.job import run_labeling_job
from local_aws.groundtruth.request_checks import check_labeling_job_request

__all__ = ["LabelingJobFailed", "check_labeling_job_request", "run_labeling_job"]
