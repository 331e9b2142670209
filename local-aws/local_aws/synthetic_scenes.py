"""Pixels of the synthetic Open Images: a drawing per class, textured backgrounds, and scene composition.

Every class has a shape and colour scheme of its own (a blue jay is blue with a white belly, a black collar
and a crest; a taxi is a yellow car with a roof sign), so that a small detector can learn them. Objects are
drawn at twice their size and scaled down, for smooth edges. A scene paints its objects one after another
and keeps, per pixel, which object is on top; a box is the extent of its object's visible pixels, so boxes
are tight around what can be seen, clipped at the border, and occluded parts are left out as an annotator
would. A placement that would hide more than half of an earlier object is tried elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
from PIL import Image, ImageDraw

Colour = tuple[int, int, int]
Point = tuple[float, float]

SUPERSAMPLING = 2
# Drawn pixels are those whose alpha reaches this: the edge of an object for boxes and occlusion.
_OPAQUE = 128
_MAX_HIDDEN_FRACTION = 0.5
_OCCLUDED_BELOW = 0.95  # visible share of the in-frame pixels under which an object counts as occluded
_TRUNCATED_ABOVE = 0.01  # share of the object's pixels outside the image above which it counts as truncated
_PLACEMENT_TRIES = 12
_NOISE_TILE = 1024
_MIN_SIDE = 6


class Pen:
    """Draws on a canvas in fractions of its width and height, so a drawing fits any box."""

    def __init__(self, draw: ImageDraw.ImageDraw, width: float, height: float) -> None:
        self.draw = draw
        self.width = width
        self.height = height

    def at(self, x: float, y: float) -> Point:
        return (x * self.width, y * self.height)

    def ellipse(
        self, x0: float, y0: float, x1: float, y1: float, fill: Colour, outline: Colour | None = None
    ) -> None:
        self.draw.ellipse(
            [self.at(x0, y0), self.at(x1, y1)], fill=fill, outline=outline, width=self.stroke(0.02)
        )

    def polygon(self, points: Sequence[Point], fill: Colour, outline: Colour | None = None) -> None:
        self.draw.polygon([self.at(x, y) for x, y in points], fill=fill, outline=outline)

    def rectangle(
        self, x0: float, y0: float, x1: float, y1: float, fill: Colour, radius: float = 0.0
    ) -> None:
        self.draw.rounded_rectangle(
            [self.at(x0, y0), self.at(x1, y1)], radius=radius * min(self.width, self.height), fill=fill
        )

    def line(self, points: Sequence[Point], fill: Colour, width: float) -> None:
        """A polyline ``width`` thick, as a fraction of the canvas's smaller side."""
        self.draw.line([self.at(x, y) for x, y in points], fill=fill, width=self.stroke(width), joint="curve")

    def stroke(self, fraction: float) -> int:
        return max(1, round(fraction * min(self.width, self.height)))


Drawer = Callable[[Pen, np.random.Generator], None]


@dataclass(frozen=True)
class Shape:
    """How a class is drawn: ``aspect`` is width over height of the drawing."""

    aspect: float
    draw: Drawer


def _vary(rng: np.random.Generator, colour: Colour, amount: int = 14) -> Colour:
    r, g, b = (int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in colour)
    return (r, g, b)


def _pick(rng: np.random.Generator, colours: Sequence[Colour]) -> Colour:
    return _vary(rng, colours[int(rng.integers(len(colours)))])


def _eye(pen: Pen, x: float, y: float, radius_x: float, iris: Colour = (15, 15, 15)) -> None:
    radius_y = radius_x * pen.width / pen.height
    pen.ellipse(x - radius_x, y - radius_y, x + radius_x, y + radius_y, iris)


# Birds, facing right. Songbirds share one silhouette and differ in colours and markings.


def _songbird(pen: Pen, body: Colour, belly: Colour, wing: Colour, head: Colour, beak: Colour) -> None:
    pen.polygon([(0.0, 0.42), (0.3, 0.52), (0.3, 0.68), (0.02, 0.62)], wing)
    pen.line([(0.5, 0.8), (0.47, 1.0)], (60, 50, 40), 0.035)
    pen.line([(0.6, 0.8), (0.62, 1.0)], (60, 50, 40), 0.035)
    pen.ellipse(0.18, 0.3, 0.8, 0.88, body)
    pen.ellipse(0.4, 0.55, 0.78, 0.86, belly)
    pen.ellipse(0.26, 0.4, 0.62, 0.72, wing)
    pen.ellipse(0.6, 0.08, 0.92, 0.5, head)
    pen.polygon([(0.89, 0.23), (1.0, 0.3), (0.89, 0.37)], beak)
    _eye(pen, 0.8, 0.23, 0.025)


def _generic_bird(pen: Pen, rng: np.random.Generator) -> None:
    grey = _vary(rng, (140, 142, 158))
    _songbird(pen, grey, _vary(rng, (165, 165, 178)), _vary(rng, (118, 120, 136)), grey, (70, 70, 70))
    pen.line([(0.33, 0.52), (0.55, 0.55)], (45, 45, 55), 0.04)
    pen.line([(0.33, 0.61), (0.55, 0.64)], (45, 45, 55), 0.04)
    pen.ellipse(0.62, 0.36, 0.8, 0.52, _vary(rng, (90, 150, 120)))


def _blue_jay(pen: Pen, rng: np.random.Generator) -> None:
    blue = _vary(rng, (45, 95, 210))
    pen.polygon([(0.64, 0.18), (0.66, 0.0), (0.8, 0.12)], blue)
    _songbird(pen, blue, (238, 238, 242), _vary(rng, (30, 70, 185)), blue, (20, 20, 20))
    for x in (0.34, 0.42, 0.5):
        pen.line([(x, 0.45), (x + 0.03, 0.7)], (10, 10, 25), 0.03)
    pen.line([(0.6, 0.4), (0.72, 0.5), (0.86, 0.44)], (10, 10, 10), 0.05)


def _sparrow(pen: Pen, rng: np.random.Generator) -> None:
    brown = _vary(rng, (150, 105, 65))
    _songbird(pen, brown, _vary(rng, (225, 205, 175)), _vary(rng, (112, 72, 40)), brown, (75, 60, 45))
    for x in (0.32, 0.4, 0.48, 0.56):
        pen.line([(x, 0.48), (x + 0.04, 0.6)], (50, 32, 18), 0.03)
    pen.ellipse(0.64, 0.08, 0.88, 0.22, _vary(rng, (128, 128, 128)))
    pen.ellipse(0.72, 0.4, 0.84, 0.52, (35, 30, 25))


def _parrot(pen: Pen, rng: np.random.Generator) -> None:
    red = _vary(rng, (215, 30, 35))
    pen.polygon([(0.25, 0.6), (0.45, 0.65), (0.3, 1.0), (0.18, 1.0)], _vary(rng, (35, 80, 200)))
    pen.ellipse(0.15, 0.25, 0.75, 0.8, red)
    pen.ellipse(0.15, 0.35, 0.5, 0.75, _vary(rng, (40, 160, 60)))
    pen.ellipse(0.17, 0.55, 0.42, 0.78, _vary(rng, (35, 80, 200)))
    pen.line([(0.22, 0.42), (0.46, 0.4)], (245, 210, 40), 0.06)
    pen.ellipse(0.42, 0.0, 0.9, 0.4, red)
    pen.ellipse(0.62, 0.1, 0.82, 0.3, (240, 236, 225))
    pen.polygon([(0.84, 0.12), (1.0, 0.22), (0.96, 0.36), (0.86, 0.3)], (235, 228, 200))
    _eye(pen, 0.72, 0.2, 0.03)


def _duck(pen: Pen, rng: np.random.Generator) -> None:
    drake = rng.random() < 0.6
    head = _vary(rng, (25, 110, 55)) if drake else _vary(rng, (125, 95, 60))
    pen.polygon([(0.0, 0.45), (0.15, 0.55), (0.1, 0.7)], (30, 30, 30))
    pen.ellipse(0.05, 0.45, 0.86, 0.98, _vary(rng, (140, 125, 100)))
    pen.ellipse(0.52, 0.5, 0.86, 0.9, _vary(rng, (115, 62, 40)) if drake else _vary(rng, (150, 115, 75)))
    pen.ellipse(0.18, 0.52, 0.56, 0.78, _vary(rng, (105, 100, 95)))
    pen.rectangle(0.38, 0.58, 0.5, 0.68, _vary(rng, (40, 60, 185)))
    pen.ellipse(0.58, 0.04, 0.88, 0.5, head)
    pen.line([(0.62, 0.47), (0.84, 0.47)], (245, 245, 245), 0.04)
    pen.polygon([(0.84, 0.24), (1.0, 0.27), (1.0, 0.34), (0.84, 0.36)], _vary(rng, (232, 190, 40)))
    _eye(pen, 0.76, 0.2, 0.018)


def _swan(pen: Pen, rng: np.random.Generator) -> None:
    white, edge = _vary(rng, (246, 246, 240), 6), (150, 150, 150)
    pen.line([(0.6, 0.72), (0.72, 0.45), (0.66, 0.24), (0.7, 0.12)], edge, 0.15)
    pen.line([(0.6, 0.72), (0.72, 0.45), (0.66, 0.24), (0.7, 0.12)], white, 0.11)
    pen.ellipse(0.0, 0.48, 0.82, 0.98, white, outline=edge)
    pen.ellipse(0.08, 0.52, 0.62, 0.84, (228, 228, 225), outline=edge)
    pen.ellipse(0.6, 0.03, 0.82, 0.2, white, outline=edge)
    pen.polygon([(0.78, 0.08), (1.0, 0.2), (0.78, 0.18)], _vary(rng, (240, 120, 30)))
    pen.ellipse(0.76, 0.06, 0.82, 0.15, (20, 20, 20))


def _owl(pen: Pen, rng: np.random.Generator) -> None:
    brown, dark = _vary(rng, (125, 90, 55)), _vary(rng, (85, 58, 35))
    pen.polygon([(0.12, 0.2), (0.16, 0.0), (0.32, 0.12)], dark)
    pen.polygon([(0.88, 0.2), (0.84, 0.0), (0.68, 0.12)], dark)
    pen.ellipse(0.05, 0.2, 0.95, 1.0, brown)
    pen.ellipse(0.0, 0.45, 0.3, 0.95, dark)
    pen.ellipse(0.7, 0.45, 1.0, 0.95, dark)
    pen.ellipse(0.25, 0.5, 0.75, 0.97, _vary(rng, (195, 165, 125)))
    for x, y in ((0.4, 0.62), (0.58, 0.66), (0.46, 0.78), (0.6, 0.84), (0.36, 0.86)):
        pen.ellipse(x - 0.025, y - 0.02, x + 0.025, y + 0.02, dark)
    pen.ellipse(0.1, 0.06, 0.9, 0.5, brown)
    for x in (0.31, 0.69):
        pen.ellipse(x - 0.2, 0.12, x + 0.2, 0.44, (225, 205, 170))
        pen.ellipse(x - 0.12, 0.19, x + 0.12, 0.37, (250, 200, 30))
        pen.ellipse(x - 0.055, 0.24, x + 0.055, 0.32, (10, 10, 10))
    pen.polygon([(0.45, 0.34), (0.55, 0.34), (0.5, 0.46)], (60, 50, 40))


def _eagle(pen: Pen, rng: np.random.Generator) -> None:
    brown = _vary(rng, (78, 52, 30))
    pen.polygon([(0.0, 0.42), (0.22, 0.5), (0.22, 0.66), (0.02, 0.76)], (242, 242, 236))
    pen.polygon(
        [(0.3, 0.5), (0.12, 0.0), (0.24, 0.06), (0.3, 0.02), (0.38, 0.1), (0.44, 0.06), (0.6, 0.5)], brown
    )
    pen.ellipse(0.16, 0.42, 0.82, 0.78, brown)
    pen.polygon(
        [(0.45, 0.55), (0.55, 0.16), (0.6, 0.22), (0.66, 0.18), (0.7, 0.56)], _vary(rng, (60, 40, 22))
    )
    pen.line([(0.48, 0.74), (0.46, 0.95)], (240, 190, 40), 0.06)
    pen.line([(0.58, 0.74), (0.6, 0.95)], (240, 190, 40), 0.06)
    pen.ellipse(0.72, 0.3, 0.93, 0.62, (245, 245, 240))
    pen.polygon([(0.9, 0.38), (1.0, 0.44), (0.98, 0.54), (0.9, 0.5)], (245, 200, 40))
    _eye(pen, 0.85, 0.42, 0.012)


# Mammals, facing right.


def _legs(pen: Pen, xs: Sequence[float], top: float, width: float, colour: Colour) -> None:
    for x in xs:
        pen.rectangle(x, top, x + width, 1.0, colour, radius=0.03)


def _dog(pen: Pen, rng: np.random.Generator) -> None:
    coat = _pick(rng, [(140, 90, 50), (45, 38, 32), (212, 172, 95), (235, 230, 220)])
    ear = _pick(rng, [(90, 55, 30), (30, 25, 20), (150, 100, 60)])
    pen.line([(0.16, 0.42), (0.06, 0.3), (0.02, 0.16)], coat, 0.08)
    _legs(pen, (0.2, 0.3, 0.62, 0.72), 0.55, 0.08, coat)
    pen.ellipse(0.12, 0.3, 0.82, 0.72, coat)
    pen.polygon([(0.66, 0.36), (0.72, 0.2), (0.84, 0.3), (0.8, 0.5)], coat)
    pen.ellipse(0.66, 0.05, 0.9, 0.42, coat)
    pen.ellipse(0.82, 0.2, 1.0, 0.4, _vary(rng, (200, 180, 160)))
    pen.ellipse(0.94, 0.2, 1.0, 0.28, (15, 15, 15))
    pen.ellipse(0.64, 0.06, 0.75, 0.42, ear)
    _eye(pen, 0.82, 0.17, 0.014)


def _cat(pen: Pen, rng: np.random.Generator) -> None:
    coat = _pick(rng, [(125, 125, 130), (222, 132, 52), (40, 38, 40), (190, 170, 140)])
    stripe = tuple(int(c * 0.6) for c in coat)
    pen.line([(0.14, 0.5), (0.05, 0.38), (0.04, 0.18), (0.1, 0.06)], coat, 0.06)
    _legs(pen, (0.2, 0.28, 0.6, 0.68), 0.6, 0.055, coat)
    pen.ellipse(0.12, 0.4, 0.78, 0.72, coat)
    for x in (0.3, 0.4, 0.5, 0.6):
        pen.line([(x, 0.43), (x - 0.03, 0.62)], stripe, 0.035)
    pen.polygon([(0.67, 0.24), (0.7, 0.0), (0.78, 0.14)], coat)
    pen.polygon([(0.82, 0.14), (0.9, 0.0), (0.93, 0.24)], coat)
    pen.ellipse(0.66, 0.1, 0.94, 0.48, coat)
    for x in (0.74, 0.86):
        pen.ellipse(x - 0.03, 0.22, x + 0.03, 0.3, (120, 200, 60))
    pen.polygon([(0.78, 0.34), (0.82, 0.34), (0.8, 0.37)], (230, 140, 150))
    for dy in (-0.03, 0.0, 0.03):
        pen.line([(0.84, 0.36), (0.98, 0.36 + dy)], (235, 235, 235), 0.01)


# Vehicles, facing right.


def _wheel(pen: Pen, x: float, y: float, radius_y: float) -> None:
    radius_x = radius_y * pen.height / pen.width
    pen.ellipse(x - radius_x, y - radius_y, x + radius_x, y + radius_y, (22, 22, 22))
    pen.ellipse(x - radius_x / 2, y - radius_y / 2, x + radius_x / 2, y + radius_y / 2, (170, 170, 175))


def _car_body(pen: Pen, paint: Colour) -> None:
    pen.polygon([(0.22, 0.12), (0.66, 0.12), (0.82, 0.44), (0.1, 0.44)], paint)
    pen.polygon([(0.25, 0.18), (0.43, 0.18), (0.43, 0.42), (0.16, 0.42)], (165, 205, 235))
    pen.polygon([(0.46, 0.18), (0.63, 0.18), (0.75, 0.42), (0.46, 0.42)], (165, 205, 235))
    pen.rectangle(0.0, 0.4, 1.0, 0.8, paint, radius=0.25)
    pen.rectangle(0.94, 0.47, 1.0, 0.56, (250, 240, 170))
    pen.rectangle(0.0, 0.47, 0.04, 0.56, (200, 20, 20))
    _wheel(pen, 0.22, 0.78, 0.22)
    _wheel(pen, 0.78, 0.78, 0.22)


def _car(pen: Pen, rng: np.random.Generator) -> None:
    paints = [(200, 30, 35), (30, 60, 160), (190, 192, 198), (25, 25, 30), (240, 240, 240), (30, 120, 60)]
    _car_body(pen, _pick(rng, paints))


def _taxi(pen: Pen, rng: np.random.Generator) -> None:
    pen.rectangle(0.36, 0.0, 0.54, 0.12, (250, 250, 240))
    _car_body(pen, _vary(rng, (245, 200, 20), 8))
    for i in range(12):
        x = 0.12 + i * 0.06
        pen.rectangle(x, 0.55 + 0.05 * (i % 2), x + 0.06, 0.6 + 0.05 * (i % 2), (20, 20, 20))


def _truck(pen: Pen, rng: np.random.Generator) -> None:
    cargo = _pick(rng, [(235, 235, 235), (200, 60, 40), (60, 90, 150), (120, 120, 120)])
    pen.rectangle(0.0, 0.0, 0.68, 0.74, cargo, radius=0.03)
    pen.line([(0.0, 0.8), (1.0, 0.8)], (30, 30, 30), 0.08)
    pen.polygon([(0.7, 0.26), (0.9, 0.26), (1.0, 0.5), (1.0, 0.8), (0.7, 0.8)], _vary(rng, (200, 30, 35)))
    pen.polygon([(0.74, 0.32), (0.88, 0.32), (0.95, 0.5), (0.74, 0.5)], (165, 205, 235))
    for x in (0.12, 0.28, 0.86):
        _wheel(pen, x, 0.84, 0.16)


# Food and plants.


def _apple(pen: Pen, rng: np.random.Generator) -> None:
    skin = _pick(rng, [(200, 22, 30), (200, 22, 30), (125, 190, 50)])
    pen.line([(0.5, 0.22), (0.54, 0.0)], (100, 65, 30), 0.05)
    pen.ellipse(0.55, 0.02, 0.85, 0.16, (60, 150, 40))
    pen.ellipse(0.0, 0.14, 0.72, 1.0, skin)
    pen.ellipse(0.28, 0.14, 1.0, 1.0, skin)
    pen.ellipse(0.2, 0.3, 0.34, 0.5, tuple(min(255, c + 70) for c in skin))


def _orange(pen: Pen, rng: np.random.Generator) -> None:
    skin = _vary(rng, (245, 140, 20), 10)
    pen.ellipse(0.0, 0.0, 1.0, 1.0, skin)
    pit = tuple(int(c * 0.82) for c in skin)
    for _ in range(14):
        x, y = 0.2 + 0.6 * rng.random(), 0.2 + 0.6 * rng.random()
        pen.ellipse(x - 0.015, y - 0.015, x + 0.015, y + 0.015, pit)
    pen.ellipse(0.46, 0.06, 0.54, 0.13, (80, 120, 40))


def _banana(pen: Pen, rng: np.random.Generator) -> None:
    outer = [
        (0.5 - 0.5 * math.cos(t), 1.0 - 0.9 * math.sin(t)) for t in np.linspace(0.15, math.pi - 0.15, 12)
    ]
    inner = [(0.5 - 0.4 * math.cos(t), 1.0 - 0.5 * math.sin(t)) for t in np.linspace(math.pi - 0.2, 0.2, 12)]
    pen.polygon(outer + inner, _vary(rng, (240, 210, 60), 10))
    pen.line([outer[0], inner[-1]], (90, 60, 20), 0.08)
    pen.line([outer[-1], inner[0]], (90, 60, 20), 0.08)


def _tomato(pen: Pen, rng: np.random.Generator) -> None:
    pen.ellipse(0.0, 0.08, 1.0, 1.0, _vary(rng, (222, 40, 30), 10))
    pen.ellipse(0.2, 0.3, 0.36, 0.45, (250, 140, 130))
    star = [
        (0.5 + r * math.cos(a), 0.16 + r * 1.2 * math.sin(a))
        for i, a in enumerate(np.linspace(0, 2 * math.pi, 12, endpoint=False))
        for r in ((0.26 if i % 2 == 0 else 0.07),)
    ]
    pen.polygon(star, (45, 130, 35))
    pen.line([(0.5, 0.16), (0.52, 0.0)], (45, 110, 35), 0.06)


def _carrot(pen: Pen, rng: np.random.Generator) -> None:
    for x_top in (0.1, 0.5, 0.9):
        pen.line([(0.5, 0.3), (x_top, 0.0)], (50, 140, 40), 0.12)
    root = _vary(rng, (240, 125, 25), 10)
    pen.polygon([(0.12, 0.26), (0.88, 0.26), (0.56, 1.0), (0.46, 1.0)], root)
    for y in (0.42, 0.56, 0.7):
        pen.line([(0.35, y), (0.55, y + 0.02)], tuple(int(c * 0.75) for c in root), 0.05)


def _stem(pen: Pen) -> None:
    pen.line([(0.5, 0.4), (0.5, 1.0)], (45, 120, 40), 0.08)
    pen.ellipse(0.5, 0.62, 0.85, 0.72, (55, 140, 45))
    pen.ellipse(0.15, 0.75, 0.5, 0.85, (55, 140, 45))


def _rose(pen: Pen, rng: np.random.Generator) -> None:
    _stem(pen)
    petal = _pick(rng, [(205, 20, 45), (205, 20, 45), (240, 120, 160)])
    pen.ellipse(0.05, 0.02, 0.95, 0.5, petal)
    dark = tuple(int(c * 0.6) for c in petal)
    for inset in (0.12, 0.24, 0.34):
        pen.draw.arc(
            [pen.at(0.05 + inset, 0.02 + inset * 0.55), pen.at(0.95 - inset, 0.5 - inset * 0.55)],
            start=200,
            end=520,
            fill=dark,
            width=pen.stroke(0.05),
        )


def _sunflower(pen: Pen, rng: np.random.Generator) -> None:
    _stem(pen)
    petal = _vary(rng, (250, 205, 20), 8)
    cx, cy = 0.5, 0.26
    for angle in np.linspace(0, 2 * math.pi, 14, endpoint=False):
        x, y = cx + 0.34 * math.cos(angle), cy + 0.19 * math.sin(angle)
        pen.ellipse(x - 0.14, y - 0.07, x + 0.14, y + 0.07, petal)
    pen.ellipse(cx - 0.26, cy - 0.14, cx + 0.26, cy + 0.14, _vary(rng, (95, 55, 20), 8))


SHAPES: dict[str, Shape] = {
    "Bird": Shape(1.35, _generic_bird),
    "Blue jay": Shape(1.35, _blue_jay),
    "Sparrow": Shape(1.35, _sparrow),
    "Parrot": Shape(0.9, _parrot),
    "Duck": Shape(1.6, _duck),
    "Swan": Shape(1.15, _swan),
    "Owl": Shape(0.75, _owl),
    "Eagle": Shape(1.7, _eagle),
    "Dog": Shape(1.45, _dog),
    "Cat": Shape(1.4, _cat),
    "Car": Shape(2.2, _car),
    "Taxi": Shape(2.2, _taxi),
    "Truck": Shape(2.6, _truck),
    "Apple": Shape(1.05, _apple),
    "Orange": Shape(1.0, _orange),
    "Banana": Shape(1.8, _banana),
    "Tomato": Shape(1.15, _tomato),
    "Carrot": Shape(0.45, _carrot),
    "Rose": Shape(0.6, _rose),
    "Sunflower": Shape(0.6, _sunflower),
}


def draw_shape(
    shape: str, width: int, height: int, rng: np.random.Generator, mirrored: bool = False
) -> Image.Image:
    """The drawing of ``shape`` on a transparent RGBA canvas of ``width`` x ``height`` pixels."""
    if shape not in SHAPES:
        raise ValueError(f"Unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    big = Image.new("RGBA", (width * SUPERSAMPLING, height * SUPERSAMPLING), (0, 0, 0, 0))
    SHAPES[shape].draw(Pen(ImageDraw.Draw(big), big.width, big.height), rng)
    canvas = big.resize((width, height), Image.Resampling.BOX)
    return canvas.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirrored else canvas


def draw_group(shape: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A tight flock or cluster of 5 to 9 touching instances of ``shape``: one group box in Open Images."""
    canvas = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    aspect = SHAPES[shape].aspect
    count = int(rng.integers(5, 10))
    mirrored = bool(rng.random() < 0.5)
    for _ in range(count):
        side = math.sqrt(width * height) * rng.uniform(0.3, 0.42)
        w = max(_MIN_SIDE, min(width, round(side * math.sqrt(aspect))))
        h = max(_MIN_SIDE, min(height, round(side / math.sqrt(aspect))))
        x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        canvas.alpha_composite(draw_shape(shape, w, h, rng, mirrored), (x, y))
    return canvas


# Backgrounds and distractors.

_SCENES: dict[str, tuple[Colour, Colour]] = {
    "meadow": ((150, 195, 235), (90, 145, 60)),
    "lake": ((170, 205, 240), (60, 105, 150)),
    "beach": ((160, 200, 240), (215, 195, 150)),
    "street": ((185, 200, 215), (105, 105, 110)),
    "room": ((215, 205, 185), (140, 100, 65)),
    "studio": ((200, 200, 205), (170, 170, 175)),
}


@cache
def _noise_tile() -> np.ndarray:
    """Fine grain shared by all backgrounds (cropped at a random offset): cheaper than new noise each time."""
    return np.random.default_rng(20180430).normal(0.0, 5.0, (_NOISE_TILE, _NOISE_TILE, 1)).astype(np.float32)


def draw_background(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Sky and ground (or wall and floor) with blotches and grain, then distractors of no class."""
    sky, ground = _SCENES[list(_SCENES)[int(rng.integers(len(_SCENES)))]]
    sky, ground = np.array(_vary(rng, sky, 20), np.float32), np.array(_vary(rng, ground, 20), np.float32)
    horizon = rng.uniform(0.25, 0.75) * height
    rows = np.clip((np.arange(height, dtype=np.float32) - horizon) / (0.04 * height) + 0.5, 0.0, 1.0)
    shade = 1.0 - 0.15 * np.arange(height, dtype=np.float32) / height
    base = (sky * (1 - rows[:, None]) + ground * rows[:, None]) * shade[:, None]
    # Blotches: mostly light and shade, a little hue.
    coarse = rng.normal(0.0, 1.0, (max(2, height // 40), max(2, width // 40), 1)) * 28.0
    coarse = coarse + rng.normal(0.0, 1.0, (*coarse.shape[:2], 3)) * 7.0
    blotches = Image.fromarray(np.clip(coarse + 128.0, 0, 255).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC
    )
    y0, x0 = int(rng.integers(0, _NOISE_TILE - height + 1)), int(rng.integers(0, _NOISE_TILE - width + 1))
    pixels = (
        base[:, None, :]
        + (np.asarray(blotches, np.float32) - 128.0)
        + _noise_tile()[y0 : y0 + height, x0 : x0 + width]
    )
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw_distractors(ImageDraw.Draw(image), rng, width, height)
    return image


def draw_distractors(draw: ImageDraw.ImageDraw, rng: np.random.Generator, width: int, height: int) -> None:
    """Polygons, stripes, rings and slabs in random colours: things a detector must learn to ignore."""
    for _ in range(int(rng.integers(2, 9))):
        colour = tuple(int(c) for c in rng.integers(40, 200, 3))
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        size = rng.uniform(0.04, 0.3) * min(width, height)
        kind = int(rng.integers(4))
        if kind == 0:
            corners = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
            draw.polygon([(cx + size * math.cos(a), cy + size * math.sin(a)) for a in angles], fill=colour)
        elif kind == 1:
            angle = rng.uniform(0, math.pi)
            dx, dy = 2 * size * math.cos(angle), 2 * size * math.sin(angle)
            draw.line([(cx - dx, cy - dy), (cx + dx, cy + dy)], fill=colour, width=max(2, int(size / 6)))
        elif kind == 2:
            draw.ellipse(
                [cx - size, cy - size, cx + size, cy + size], outline=colour, width=max(2, int(size / 5))
            )
        else:
            draw.rectangle([cx - size, cy - size / 3, cx + size, cy + size / 3], fill=colour)


# Scenes.


@dataclass(frozen=True)
class SceneObject:
    """One thing to draw: ``size`` is the square root of its area as a fraction of the image's shorter side.

    ``truncated`` asks for a placement cut by the border; ``depiction`` draws it inside a framed picture.
    """

    shape: str
    size: float
    group: bool = False
    truncated: bool = False
    depiction: bool = False


@dataclass(frozen=True)
class DrawnObject:
    """A placed object and its box around the visible pixels, normalised, in Open Images' order."""

    request: SceneObject
    xmin: float
    xmax: float
    ymin: float
    ymax: float
    is_occluded: bool
    is_truncated: bool


@dataclass(frozen=True)
class RenderedScene:
    image: Image.Image
    objects: tuple[DrawnObject, ...]  # in drawing order; objects that found no place are left out
    owners: np.ndarray  # per pixel: index into ``objects`` of the object on top, or -1


@dataclass
class _Placement:
    request: SceneObject
    left: int
    top: int
    canvas: Image.Image
    mask: np.ndarray  # drawn pixels of the canvas
    total: int  # drawn pixels, in and out of the frame
    in_frame: int  # drawn pixels inside the image


def render_scene(
    rng: np.random.Generator, width: int, height: int, objects: Sequence[SceneObject]
) -> RenderedScene:
    """Draw the background, then ``objects`` in order (framed pictures first), and measure their boxes.

    The random draws for the background come first, so the same generator state with no objects gives the
    same picture without them.
    """
    if not (_MIN_SIDE <= width <= _NOISE_TILE and _MIN_SIDE <= height <= _NOISE_TILE):
        raise ValueError(
            f"Scene size {width}x{height}: each side must be {_MIN_SIDE} to {_NOISE_TILE} pixels"
        )
    unknown = sorted({o.shape for o in objects} - set(SHAPES))
    if unknown:
        raise ValueError(f"Unknown shapes {', '.join(map(repr, unknown))}; known: {', '.join(SHAPES)}")
    if sum(o.depiction for o in objects) > 1:
        raise ValueError("A scene holds at most one depiction: its frame is drawn before any other object")
    image = draw_background(rng, width, height)
    owners = np.full((height, width), -1, np.int16)
    placed: list[_Placement] = []
    visible: list[int] = []
    for request in sorted(objects, key=lambda o: not o.depiction):
        canvas = _draw_object(request, width, height, rng)
        placement = _place(rng, request, canvas, width, height, owners, placed, visible)
        if placement is None:
            continue
        if request.depiction:
            _draw_frame(image, placement, rng)
        _paint(image, owners, placement, len(placed), visible)
        placed.append(placement)
        visible.append(placement.in_frame)
    drawn = tuple(
        DrawnObject(
            placement.request,
            *_visible_box(owners, placement, index),
            is_occluded=visible[index] < _OCCLUDED_BELOW * placement.in_frame,
            is_truncated=placement.in_frame < (1 - _TRUNCATED_ABOVE) * placement.total,
        )
        for index, placement in enumerate(placed)
    )
    return RenderedScene(image, drawn, owners)


def _draw_object(request: SceneObject, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    aspect = SHAPES[request.shape].aspect
    side = request.size * min(width, height)
    w, h = side * math.sqrt(aspect), side / math.sqrt(aspect)
    if not request.truncated:
        fit = min(1.0, 0.96 * width / w, 0.96 * height / h)
        w, h = w * fit, h * fit
    w, h = max(_MIN_SIDE, round(w)), max(_MIN_SIDE, round(h))
    if request.group:
        return draw_group(request.shape, w, h, rng)
    return draw_shape(request.shape, w, h, rng, mirrored=bool(rng.random() < 0.5))


def _place(
    rng: np.random.Generator,
    request: SceneObject,
    canvas: Image.Image,
    width: int,
    height: int,
    owners: np.ndarray,
    placed: Sequence[_Placement],
    visible: Sequence[int],
) -> _Placement | None:
    """A position hiding at most half of any earlier object (and showing at least half of this one)."""
    mask = np.asarray(canvas.getchannel("A")) >= _OPAQUE
    total = int(mask.sum())
    if total == 0:
        return None
    w, h = canvas.size
    for _ in range(_PLACEMENT_TRIES):
        left, top = _position(rng, request, w, h, width, height, placed)
        x0, y0, x1, y1 = max(0, left), max(0, top), min(width, left + w), min(height, top + h)
        if x1 - x0 < _MIN_SIDE or y1 - y0 < _MIN_SIDE:
            continue
        inside = mask[y0 - top : y1 - top, x0 - left : x1 - left]
        in_frame = int(inside.sum())
        if in_frame < 0.5 * total:
            continue
        covered = owners[y0:y1, x0:x1][inside]
        hidden = np.bincount(covered[covered >= 0], minlength=len(placed))
        if all(
            visible[i] - hidden[i] >= (1 - _MAX_HIDDEN_FRACTION) * placed[i].in_frame
            for i in range(len(placed))
        ):
            return _Placement(request, left, top, canvas, mask, total, in_frame)
    return None


def _position(
    rng: np.random.Generator,
    request: SceneObject,
    w: int,
    h: int,
    width: int,
    height: int,
    placed: Sequence[_Placement],
) -> tuple[int, int]:
    if request.truncated:
        out_x, out_y = rng.uniform(0.15, 0.45, 2) * (w, h)
        side = int(rng.integers(4))
        left = int(rng.integers(-w // 4, max(-w // 4 + 1, width - 3 * w // 4)))
        top = int(rng.integers(-h // 4, max(-h // 4 + 1, height - 3 * h // 4)))
        if side == 0:
            left = -int(out_x)
        elif side == 1:
            left = width - w + int(out_x)
        elif side == 2:
            top = -int(out_y)
        else:
            top = height - h + int(out_y)
        return left, top
    if placed and rng.random() < 0.35:
        neighbour = placed[int(rng.integers(len(placed)))]
        nw, nh = neighbour.canvas.size
        left = neighbour.left + int(rng.uniform(-0.7, 0.7) * max(w, nw))
        top = neighbour.top + int(rng.uniform(-0.5, 0.5) * max(h, nh))
        return int(np.clip(left, 0, width - w)), int(np.clip(top, 0, height - h))
    return int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))


def _draw_frame(image: Image.Image, placement: _Placement, rng: np.random.Generator) -> None:
    """A picture on the wall: a frame and a paper mount behind a depicted object."""
    w, h = placement.canvas.size
    margin = max(3, int(0.12 * max(w, h)))
    box = [
        placement.left - margin,
        placement.top - margin,
        placement.left + w + margin,
        placement.top + h + margin,
    ]
    frame = tuple(int(c) for c in rng.integers(30, 120, 3))
    ImageDraw.Draw(image).rectangle(box, fill=(238, 234, 222), outline=frame, width=max(2, margin // 3))


def _paint(
    image: Image.Image, owners: np.ndarray, placement: _Placement, index: int, visible: list[int]
) -> None:
    image.paste(placement.canvas, (placement.left, placement.top), placement.canvas)
    height, width = owners.shape
    w, h = placement.canvas.size
    x0, y0 = max(0, placement.left), max(0, placement.top)
    x1, y1 = min(width, placement.left + w), min(height, placement.top + h)
    inside = placement.mask[
        y0 - placement.top : y1 - placement.top, x0 - placement.left : x1 - placement.left
    ]
    region = owners[y0:y1, x0:x1]
    hidden = np.bincount(region[inside][region[inside] >= 0], minlength=len(visible))
    for i, count in enumerate(hidden):
        visible[i] -= int(count)
    region[inside] = index


def _visible_box(owners: np.ndarray, placement: _Placement, index: int) -> tuple[float, float, float, float]:
    """Never empty: a placement keeps at least half of every object visible."""
    height, width = owners.shape
    w, h = placement.canvas.size
    x0, y0 = max(0, placement.left), max(0, placement.top)
    x1, y1 = min(width, placement.left + w), min(height, placement.top + h)
    rows, cols = np.nonzero(owners[y0:y1, x0:x1] == index)
    return (
        (x0 + int(cols.min())) / width,
        (x0 + int(cols.max()) + 1) / width,
        (y0 + int(rows.min())) / height,
        (y0 + int(rows.max()) + 1) / height,
    )
