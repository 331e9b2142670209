"""The model server of an endpoint instance: SageMaker's serving contract around the object-detection model.

The model is an untrained detector written by ``write_model_artifact``: a genuine artifact, whose
predictions are meaningless but shaped as the algorithm's.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
import uvicorn
from PIL import Image

from local_aws.object_detection import Predictor
from local_aws.object_detection.artifact import write_model_artifact
from local_aws.object_detection.models import ModelSpec, build_detector
from local_aws.sagemaker_service.model_server import create_app
from tests.local_aws.conftest import REPO_ROOT, free_port, process_alive

SPEC = ModelSpec(
    base_network="mobilenet-v3", num_classes=1, image_shape=64, nms_threshold=0.45, pretrained_backbone=False
)
SERVER_MODULE = "local_aws.sagemaker_service.model_server"


def write_untrained_artifact(directory: Path) -> Path:
    """A ``model.tar.gz`` of an untrained detector, as a training job writes it."""
    torch.manual_seed(0)
    return write_model_artifact(directory, SPEC, build_detector(SPEC).state_dict(), {"num_classes": "1"})


def encoded_image(image_format: str, size: tuple[int, int] = (96, 72)) -> bytes:
    image = Image.new("RGB", size, (30, 120, 200))
    image.paste((250, 200, 20), (20, 15, 60, 50))
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_untrained_artifact(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def client(artifact: Path) -> Iterator[httpx.Client]:
    """The app on uvicorn in a thread of the test process, and a client of it."""
    torch.set_num_threads(1)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(Predictor.from_artifact(artifact)), port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the model server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join()


def assert_prediction(body: dict) -> None:
    assert list(body) == ["prediction"]
    assert body["prediction"], "an untrained detector still scores some boxes above the threshold"
    scores = [row[1] for row in body["prediction"]]
    assert scores == sorted(scores, reverse=True)
    for class_id, score, *box in body["prediction"]:
        assert class_id == 0.0
        assert 0.0 <= score <= 1.0
        assert all(0.0 <= value <= 1.0 for value in box) and box[0] <= box[2] and box[1] <= box[3]


def test_ping_answers_once_loaded(client: httpx.Client) -> None:
    assert client.get("/ping").status_code == 200


@pytest.mark.parametrize(
    ("content_type", "image_format"),
    [("image/jpeg", "JPEG"), ("image/png", "PNG"), ("application/x-image", "JPEG")],
)
def test_invocations_answer_the_algorithms_json(
    client: httpx.Client, content_type: str, image_format: str
) -> None:
    response = client.post(
        "/invocations", content=encoded_image(image_format), headers={"Content-Type": content_type}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_prediction(response.json())


def test_an_unsupported_content_type_is_415(client: httpx.Client) -> None:
    response = client.post("/invocations", content=b"1,2,3", headers={"Content-Type": "text/csv"})

    assert response.status_code == 415
    assert "'text/csv' is not supported" in response.json()["message"]


def test_a_body_that_is_not_an_image_is_400(client: httpx.Client) -> None:
    response = client.post("/invocations", content=b"not a jpeg", headers={"Content-Type": "image/jpeg"})

    assert response.status_code == 400
    assert "10 bytes of image/jpeg" in response.json()["message"]
    assert "not an image that can be decoded" in response.json()["message"]


def test_an_accept_without_json_is_406(client: httpx.Client) -> None:
    response = client.post(
        "/invocations",
        content=encoded_image("JPEG"),
        headers={"Content-Type": "image/jpeg", "Accept": "text/csv"},
    )

    assert response.status_code == 406
    ok = client.post(
        "/invocations",
        content=encoded_image("JPEG"),
        headers={"Content-Type": "image/jpeg", "Accept": "text/html, application/json;q=0.9"},
    )
    assert ok.status_code == 200


def test_a_model_that_cannot_load_ends_the_process_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "model.tar.gz"
    broken.write_bytes(b"this is no archive")

    result = subprocess.run(
        [sys.executable, "-m", SERVER_MODULE, "--model-data", str(broken), "--port", str(free_port())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("The model cannot be loaded: the model data is not a readable tar.gz archive")


def test_the_server_ends_when_its_parent_is_gone(artifact: Path) -> None:
    """A parent that starts the server and exits: the server notices and ends by itself."""
    port = free_port()
    launcher = (
        "import os, subprocess, sys\n"
        f"command = [sys.executable, '-m', {SERVER_MODULE!r}, '--model-data', {str(artifact)!r}]\n"
        f"command += ['--port', '{port}', '--parent-pid', str(os.getpid())]\n"
        "child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(child.pid)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", launcher],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    server_pid = int(result.stdout)
    try:
        deadline = time.monotonic() + 30
        while process_alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not process_alive(server_pid), "the model server outlived its parent"
    finally:
        if process_alive(server_pid):
            os.kill(server_pid, 9)


def test_predictions_are_json_floats(client: httpx.Client) -> None:
    response = client.post(
        "/invocations", content=encoded_image("PNG"), headers={"Content-Type": "image/png"}
    )

    rows = json.loads(response.content)["prediction"]
    assert all(isinstance(value, float) for row in rows for value in row)
