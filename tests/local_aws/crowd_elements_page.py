"""A worker's task page with the stack's crowd HTML elements, served from memory, driven in chromium.

``TaskSite`` serves the portal's static ``crowd-html-elements.js``, a generated image and task pages like
the portal renders them (AWS's script tag replaced by ours, the portal's meta tags), with the portal's
Content-Security-Policy, and records what is posted to it. ``BoundingBoxPage`` works the page's
``<crowd-bounding-box>`` with the mouse and converts between image pixels and screen points by the image's
on-screen rectangle, the way the element itself does.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from PIL import Image, ImageDraw
from playwright.sync_api import Locator, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
CROWD_ELEMENTS_JS = REPO_ROOT / "local-aws/local_aws/portal/static/crowd-html-elements.js"
PORTAL_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'"
IMAGE_SIZE = (1600, 1000)
IMAGE_PATH = "/task-images/birds.png"
CSRF_TOKEN = "csrf-token-for-the-test"
# Boxes a task starts with: one with fractional edges, one reaching past the image's top right corner.
INITIAL_VALUE = [
    {"label": "Bird", "left": 10.4, "top": 20.6, "width": 100.2, "height": 50},
    {"label": "Nest", "left": 1550, "top": -5, "width": 100, "height": 50},
]
_META = f'<meta name="crowd-submit-url" content="/submit">\n<meta name="csrf-token" content="{CSRF_TOKEN}">\n'
_BOUNDING_BOX = """<crowd-form>
  <crowd-bounding-box name="boundingBox" src="{image}?X-Amz-Signature=abc123"
      header="Draw a tight box around every Bird in this image."
      labels="[&quot;Bird&quot;,&quot;Nest&quot;]"{extra}>
    <full-instructions header="How to box each Bird">
      <ol><li>Find every Bird in the image.</li><li>Draw one box per Bird.</li></ol>
      <ul><li>Leave out the parts you can't see.</li></ul>
    </full-instructions>
    <short-instructions>
      <p>Box every Bird tightly, visible parts only.</p>
      <img src="{example}" alt="A tightly boxed Bird">
    </short-instructions>
  </crowd-bounding-box>
  <form><label>Comment <input type="text" name="comment"></label></form>
</crowd-form>"""
# The portal's bar above a task: Skip and Release are plain forms of their own, outside the crowd-form.
_TASK_BAR = """<style>
  .bar { position: sticky; top: 0; display: flex; gap: 8px; padding: 10px 24px; background: #1d2430; }
  .bar button { font: inherit; padding: 7px 16px; }
  main { padding: 16px 24px; }
</style>
<header class="bar">
  <form method="post" action="/skip"><input type="hidden" name="csrf_token" value="t">
    <button type="submit">Skip</button></form>
  <form method="post" action="/release"><button type="submit">Release</button></form>
</header>"""
_STANDALONE = """<full-instructions header="Read this first">
  <p>The full instructions, on their own.</p>
</full-instructions>
<short-instructions><p>The short instructions, on their own.</p></short-instructions>"""


def _page(body: str, meta: str = _META, *, script_last: bool = False) -> bytes:
    """A page with our script in its head, or (as the portal's task page has it) after its body."""
    script = '<script src="/static/crowd-html-elements.js"></script>\n'
    head, tail = ("", script) if script_last else (script, "")
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"{meta}<title>Task</title>\n{head}</head>\n<body>\n{body}\n{tail}</body>\n</html>\n"
    ).encode()


def task_image() -> bytes:
    """A PNG of ``IMAGE_SIZE``: sky, ground and a few birds, so that a person looking at a screenshot sees
    the boxes land on something."""
    image = Image.new("RGB", IMAGE_SIZE, (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 700, 1600, 1000), fill=(90, 140, 70))
    for x, y in ((200, 150), (700, 400), (1200, 250), (400, 750)):
        draw.ellipse((x, y, x + 160, y + 100), fill=(120, 80, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def example_data_url() -> str:
    """A small example image as a data: URL, as templates embed one in their short instructions."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (120, 80, 40)).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class TaskSite:
    """Serves the task pages on 127.0.0.1 with the portal's CSP; a POST to /submit is recorded and
    answered with ``answer`` (a status and a JSON body)."""

    posts: list[Post] = field(default_factory=list)
    answer: tuple[int, dict[str, Any]] = (200, {"next": "/done"})
    _server: ThreadingHTTPServer | None = None

    def files(self) -> dict[str, tuple[str, bytes]]:
        example = example_data_url()
        task = _BOUNDING_BOX.format(image=IMAGE_PATH, example=example, extra="")
        given = html.escape(json.dumps(INITIAL_VALUE), quote=True)
        with_boxes = _BOUNDING_BOX.format(
            image=IMAGE_PATH, example=example, extra=f' initial-value="{given}"'
        )
        return {
            "/static/crowd-html-elements.js": ("text/javascript", CROWD_ELEMENTS_JS.read_bytes()),
            IMAGE_PATH: ("image/png", task_image()),
            "/task": ("text/html", _page(f"{_TASK_BAR}\n<main>{task}</main>", script_last=True)),
            "/preview": ("text/html", _page(task, meta="")),
            "/initial-value": ("text/html", _page(with_boxes)),
            "/standalone": ("text/html", _page(_STANDALONE)),
            # An inline script, which the portal's CSP must stop.
            "/inline-script": ("text/html", _page("<script>window.inlineScriptRan = true;</script>")),
            "/done": ("text/html", _page("<p>Thank you</p>")),
            "/skip": ("text/html", _page("<p>Skipped</p>")),
        }

    @property
    def base_url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        files = self.files()
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = urlsplit(self.path).path
                if path not in files:
                    self._send(404, "text/plain", b"not found")
                    return
                self._send(200, *files[path])

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Type") != "application/json":
                    # A plain form's post (Skip): recorded as sent, answered with its page.
                    site.posts.append(Post(self.path, dict(self.headers.items()), body.decode()))
                    self._send(200, *files[self.path])
                    return
                site.posts.append(Post(self.path, dict(self.headers.items()), json.loads(body)))
                status, answer = site.answer
                self._send(status, "application/json", json.dumps(answer).encode())

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Security-Policy", PORTAL_CSP)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet test output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def js_round(value: float) -> int:
    """JavaScript's Math.round (halves up), which the element rounds box edges with."""
    return math.floor(value + 0.5)


def expected_box(
    label: str, x0: float, y0: float, x1: float, y1: float, size: tuple[int, int] = IMAGE_SIZE
) -> dict[str, Any]:
    """The box the element stores for corners in image px: kept inside the image, edges rounded, ≥ 1 px."""

    def span(a: float, b: float, limit: int) -> tuple[int, int]:
        start = js_round(min(max(min(a, b), 0), limit))
        end = js_round(min(max(max(a, b), 0), limit))
        if end - start < 1:
            end = min(start + 1, limit)
            start = end - 1
        return start, end - start

    left, width = span(x0, x1, size[0])
    top, height = span(y0, y1, size[1])
    return {"height": height, "label": label, "left": left, "top": top, "width": width}


@dataclass(frozen=True)
class Rect:
    left: float
    top: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.left + self.width

    @property
    def bottom(self) -> float:
        return self.top + self.height


_RECT_JS = "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; }"


@dataclass(frozen=True)
class BoundingBoxPage:
    page: Page

    @property
    def element(self) -> Locator:
        return self.page.locator("crowd-bounding-box")

    @property
    def image(self) -> Locator:
        return self.page.get_by_test_id("crowd-bounding-box-image")

    def wait_for_image(self) -> None:
        self.page.wait_for_function(
            "document.querySelector('crowd-bounding-box').validate() === null", timeout=10_000
        )

    def image_rect(self) -> Rect:
        return Rect(*self.image.evaluate(_RECT_JS))

    def viewport_rect(self) -> Rect:
        """The visible part of the image area (scrollbars excluded)."""
        viewport = self.page.get_by_test_id("crowd-bounding-box-viewport")
        left, top, *_ = viewport.evaluate(_RECT_JS)
        width, height = viewport.evaluate("e => [e.clientWidth, e.clientHeight]")
        return Rect(left, top, width, height)

    def value(self) -> dict[str, Any]:
        return self.element.evaluate("e => e.value")

    def boxes(self) -> list[dict[str, Any]]:
        return self.value()["boundingBoxes"]

    def to_screen(self, x: float, y: float) -> tuple[int, int]:
        """The whole screen point nearest to an image point (the mouse moves in whole pixels)."""
        rect = self.image_rect()
        return (
            js_round(rect.left + x * rect.width / IMAGE_SIZE[0]),
            js_round(rect.top + y * rect.height / IMAGE_SIZE[1]),
        )

    def to_image(self, screen: tuple[float, float]) -> tuple[float, float]:
        """The image point at a screen point, computed as the element computes it."""
        rect = self.image_rect()
        return (
            (screen[0] - rect.left) * IMAGE_SIZE[0] / rect.width,
            (screen[1] - rect.top) * IMAGE_SIZE[1] / rect.height,
        )

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        """Press at ``start``, move to ``end`` in a few steps, release (screen points)."""
        mouse = self.page.mouse
        mouse.move(*start)
        mouse.down()
        mouse.move(*end, steps=4)
        mouse.up()

    def draw(self, label: str, x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
        """Draw a box from image point (x0, y0) to (x1, y1); the box the element should store for it."""
        start, end = self.to_screen(x0, y0), self.to_screen(x1, y1)
        expected = expected_box(label, *self.to_image(start), *self.to_image(end))
        self.drag(start, end)
        return expected

    def move_by(self, box: dict[str, Any], screen_dx: int, screen_dy: int) -> dict[str, Any]:
        """Drag a box by its middle; the box the element should store after it."""
        start = self.to_screen(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2)
        end = (start[0] + screen_dx, start[1] + screen_dy)
        (sx, sy), (ex, ey) = self.to_image(start), self.to_image(end)
        left = min(max(box["left"] + ex - sx, 0), IMAGE_SIZE[0] - box["width"])
        top = min(max(box["top"] + ey - sy, 0), IMAGE_SIZE[1] - box["height"])
        self.drag(start, end)
        return expected_box(box["label"], left, top, left + box["width"], top + box["height"])

    def resize(self, box: dict[str, Any], handle: str, screen_dx: int, screen_dy: int) -> dict[str, Any]:
        """Drag one of the selected box's 8 handles ("nw", "n", …, "w"); the box it should become."""
        x0, y0 = box["left"], box["top"]
        x1, y1 = x0 + box["width"], y0 + box["height"]
        handle_x = x0 if "w" in handle else x1 if "e" in handle else (x0 + x1) / 2
        handle_y = y0 if "n" in handle else y1 if "s" in handle else (y0 + y1) / 2
        start = self.to_screen(handle_x, handle_y)
        end = (start[0] + screen_dx, start[1] + screen_dy)
        (sx, sy), (ex, ey) = self.to_image(start), self.to_image(end)
        dx, dy = ex - sx, ey - sy
        expected = expected_box(
            box["label"],
            x0 + (dx if "w" in handle else 0),
            y0 + (dy if "n" in handle else 0),
            x1 + (dx if "e" in handle else 0),
            y1 + (dy if "s" in handle else 0),
        )
        self.drag(start, end)
        return expected

    def click_box(self, box: dict[str, Any]) -> None:
        """Select a box by clicking its middle."""
        self.page.mouse.click(*self.to_screen(box["left"] + box["width"] / 2, box["top"] + box["height"] / 2))
