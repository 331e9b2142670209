"""Where an experiment's files live in S3 and what its AWS resources are called.

Every file of one pipeline run lives under ``s3://<bucket>/<prefix>/<class slug>/<run slug>/``. This module
is the only place that knows the layout below that root, so readers and writers never build keys by hand.

Resource names (labeling job, training job, model, transform job, endpoint config, endpoint) are derived
from the DAG id, the run id and the class. They are deterministic, so a retried or cleared task finds its
own job again, distinct for every run and class, and valid SageMaker names of at most 63 characters.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_RESOURCE_NAME_LENGTH = 63
# Room left at the end of a derived name for the "-<n>" that a re-created job after a failed one gets.
RETRY_SUFFIX_ROOM = 3
SAGEMAKER_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_RESOURCE_KINDS = ("label", "train", "model", "transform", "epc", "endpoint")


def slugify(text: str, max_length: int = 40) -> str:
    """Lower-case ``text`` and keep runs of letters and digits joined by single hyphens."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def _digest(*parts: str, length: int) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def run_slug(run_id: str) -> str:
    """A readable, S3-safe folder name for a DAG run, unique per run id.

    Sanitising alone could map two run ids to one slug (``+00:00`` and ``-00-00``), so a short digest of
    the exact run id is appended.
    """
    return f"{slugify(run_id, max_length=48) or 'run'}-{_digest(run_id, length=8)}"


def resource_name(dag_id: str, run_id: str, class_name: str, kind: str) -> str:
    """The SageMaker name of one resource of a run, e.g. ``gtod-bird-3f9c1a2b7d-train``."""
    if kind not in _RESOURCE_KINDS:
        raise ValueError(f"Unknown resource kind {kind!r}; expected one of {', '.join(_RESOURCE_KINDS)}")
    digest = _digest(dag_id, run_id, class_name, length=10)
    room_for_class = MAX_RESOURCE_NAME_LENGTH - RETRY_SUFFIX_ROOM - len("gtod---") - len(digest) - len(kind)
    class_part = slugify(class_name, max_length=room_for_class) or "class"
    name = f"gtod-{class_part}-{digest}-{kind}"
    if not SAGEMAKER_NAME_PATTERN.match(name):
        raise ValueError(f"Derived resource name {name!r} is not a valid SageMaker name")
    return name


@dataclass(frozen=True)
class ExperimentLayout:
    """The S3 keys of one experiment (one class, one DAG run)."""

    bucket: str
    prefix: str
    class_slug: str
    run_slug: str

    @classmethod
    def for_run(cls, bucket: str, prefix: str, class_name: str, run_id: str) -> ExperimentLayout:
        return cls(
            bucket=bucket,
            prefix=prefix.strip("/"),
            class_slug=slugify(class_name) or "class",
            run_slug=run_slug(run_id),
        )

    @property
    def class_root_key(self) -> str:
        """What every run of the class shares: ``<prefix>/<class>``."""
        return "/".join(p for p in (self.prefix, self.class_slug) if p)

    @property
    def root_key(self) -> str:
        return f"{self.class_root_key}/{self.run_slug}"

    # The class: what its runs share.
    @property
    def labeled_runs_prefix(self) -> str:
        """One record per run whose labeling job labeled images of the class, naming its output manifest."""
        return f"{self.class_root_key}/labeled-runs/"

    @property
    def labeled_run_key(self) -> str:
        return f"{self.labeled_runs_prefix}{self.run_slug}.json"

    def key(self, *parts: str) -> str:
        return "/".join([self.root_key, *parts])

    def uri(self, *parts: str) -> str:
        return self.uri_of_key(self.key(*parts))

    def uri_of_key(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # Prepare: the data Ground Truth labels.
    def image_key(self, image_id: str, suffix: str = ".jpg") -> str:
        return self.key("images", f"{image_id}{suffix}")

    @property
    def input_manifest_key(self) -> str:
        return self.key("input.manifest")

    @property
    def label_categories_key(self) -> str:
        return self.key("class_labels.json")

    @property
    def instructions_template_key(self) -> str:
        return self.key("instructions.template")

    @property
    def reference_boxes_key(self) -> str:
        """Open Images boxes of the selected images (JSON Lines), kept for the analysis."""
        return self.key("reference-boxes.jsonl")

    @property
    def selection_summary_key(self) -> str:
        return self.key("selection.json")

    # Label: Ground Truth writes its output tree under <labeling output>/<job name>/.
    @property
    def labeling_output_uri(self) -> str:
        return self.uri("labeling") + "/"

    def labeling_job_key(self, job_name: str, *parts: str) -> str:
        return self.key("labeling", job_name, *parts)

    def output_manifest_key(self, job_name: str) -> str:
        return self.labeling_job_key(job_name, "manifests", "output", "output.manifest")

    # Analyse: reports and metrics.
    @property
    def analysis_prefix(self) -> str:
        return self.key("analysis")

    def analysis_key(self, filename: str) -> str:
        return self.key("analysis", filename)

    @property
    def metrics_key(self) -> str:
        return self.analysis_key("metrics.json")

    # Train.
    @property
    def train_manifest_key(self) -> str:
        return self.key("training", "train.manifest")

    @property
    def validation_manifest_key(self) -> str:
        return self.key("training", "validation.manifest")

    @property
    def training_output_uri(self) -> str:
        return self.uri("training", "output") + "/"

    # Deploy: held-out images, batch transform output and predictions.
    @property
    def test_images_prefix(self) -> str:
        return self.key("test-images") + "/"

    def test_image_key(self, image_id: str, suffix: str = ".jpg") -> str:
        return self.key("test-images", f"{image_id}{suffix}")

    @property
    def transform_output_uri(self) -> str:
        return self.uri("transform", "output") + "/"

    def prediction_key(self, filename: str) -> str:
        return self.key("predictions", filename)


@dataclass(frozen=True)
class ExperimentRun:
    """One DAG run's experiment: enough to rebuild its S3 layout and resource names anywhere.

    Passed between tasks as a small XCom dict (``as_dict`` / ``from_dict``) instead of paths and names, so
    that every task derives the same keys and names from the same few values.
    """

    dag_id: str
    run_id: str
    bucket: str
    prefix: str
    class_name: str
    class_mid: str

    @property
    def layout(self) -> ExperimentLayout:
        return ExperimentLayout.for_run(self.bucket, self.prefix, self.class_name, self.run_id)

    def resource_name(self, kind: str) -> str:
        return resource_name(self.dag_id, self.run_id, self.class_name, kind)

    def as_dict(self) -> dict[str, str]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "class_name": self.class_name,
            "class_mid": self.class_mid,
        }

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> ExperimentRun:
        return cls(**values)
