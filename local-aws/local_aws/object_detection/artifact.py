"""``model.tar.gz``: the trained detector's weights, what it takes to rebuild it, and its hyperparameters.

Members: ``model_algo-1.pt`` (the state dict, written with ``torch.save``), ``model_algo-1-spec.json``
(``ModelSpec`` under a format marker) and ``hyperparams.json`` (the final configuration, as AWS's artifact
of this algorithm has one). Reading never unpacks to disk and loads the weights with ``weights_only``.
"""

from __future__ import annotations

import io
import json
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from local_aws.object_detection.errors import InvalidModelArtifactError
from local_aws.object_detection.models import ModelSpec

FORMAT = "local-aws/object-detection"
FORMAT_VERSION = 1
WEIGHTS_MEMBER = "model_algo-1.pt"
SPEC_MEMBER = "model_algo-1-spec.json"
HYPERPARAMETERS_MEMBER = "hyperparams.json"
ARTIFACT_NAME = "model.tar.gz"


@dataclass(frozen=True)
class ModelArtifact:
    spec: ModelSpec
    state_dict: dict[str, Tensor]
    hyperparameters: dict[str, str]


def write_model_artifact(
    directory: Path, spec: ModelSpec, state_dict: Mapping[str, Tensor], hyperparameters: Mapping[str, str]
) -> Path:
    """Write ``directory/model.tar.gz`` and return its path."""
    weights = io.BytesIO()
    torch.save({name: tensor.detach().cpu() for name, tensor in state_dict.items()}, weights)
    members = {
        WEIGHTS_MEMBER: weights.getvalue(),
        SPEC_MEMBER: json.dumps(
            {"format": FORMAT, "version": FORMAT_VERSION, "model": spec.to_json()}
        ).encode(),
        HYPERPARAMETERS_MEMBER: json.dumps(dict(hyperparameters), indent=2).encode(),
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ARTIFACT_NAME
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return path


def read_model_artifact(source: bytes | Path) -> ModelArtifact:
    """The artifact in ``source`` (the bytes of a ``model.tar.gz`` or its path)."""
    data = source.read_bytes() if isinstance(source, Path) else source
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
            files: dict[str, bytes] = {}
            for member in archive.getmembers():
                handle = archive.extractfile(member) if member.isfile() else None
                if handle is not None:
                    files[member.name.removeprefix("./")] = handle.read()
    except (tarfile.TarError, EOFError, OSError) as error:
        raise InvalidModelArtifactError(f"the model data is not a readable tar.gz archive: {error}") from None
    missing = [name for name in (WEIGHTS_MEMBER, SPEC_MEMBER) if name not in files]
    if missing:
        mxnet = any(name.endswith((".params", "-symbol.json")) for name in files)
        raise InvalidModelArtifactError(
            f"the model data lacks {', '.join(missing)}; it holds {', '.join(sorted(files)) or 'no files'}"
            + (
                ": an MXNet model of AWS's algorithm, which the local stack cannot serve; train the model "
                "on the local stack"
                if mxnet
                else ""
            )
        )
    try:
        header = json.loads(files[SPEC_MEMBER])
        if header.get("format") != FORMAT or header.get("version") != FORMAT_VERSION:
            raise InvalidModelArtifactError(
                f"{SPEC_MEMBER} is format {header.get('format')!r} version {header.get('version')!r}; "
                f"expected {FORMAT!r} version {FORMAT_VERSION}"
            )
        spec = ModelSpec.from_json(header["model"])
        state_dict = torch.load(io.BytesIO(files[WEIGHTS_MEMBER]), map_location="cpu", weights_only=True)
        hyperparameters = json.loads(files.get(HYPERPARAMETERS_MEMBER, b"{}"))
    except InvalidModelArtifactError:
        raise
    except Exception as error:
        raise InvalidModelArtifactError(f"the model data cannot be read: {error}") from error
    return ModelArtifact(spec, state_dict, hyperparameters)
