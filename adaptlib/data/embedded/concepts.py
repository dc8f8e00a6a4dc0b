"""The visual vocabulary of the embedded world: shapes, colours, textures, sizes, positions, backgrounds.

Every shape is a closed outline given as a polar radius profile r(theta) sampled at ``N_ANGLES`` angles around
its centre, so any two shapes can be blended continuously: that is what the inter-class distance dial uses.
Concepts listed in ``WITHHELD_*`` never appear in the pretraining corpus (neither their images nor their words),
so downstream tasks built on them are novel to the backbone.
"""

from __future__ import annotations

import colorsys
from functools import lru_cache

import numpy as np

N_ANGLES = 256
_THETA = np.linspace(0.0, 2.0 * np.pi, N_ANGLES, endpoint=False)


def _polygon_profile(vertices: np.ndarray) -> np.ndarray:
    """Radius of a star-shaped polygon (around the origin) along each ray of ``_THETA``."""
    v = np.asarray(vertices, dtype=np.float64)
    a, b = v, np.roll(v, -1, axis=0)
    d = np.stack([np.cos(_THETA), np.sin(_THETA)], axis=1)  # [N, 2] ray directions
    radii = np.zeros(N_ANGLES)
    for p, q in zip(a, b):
        e = q - p  # edge p + s*e, s in [0, 1]; ray t*d, t >= 0
        den = d[:, 0] * (-e[1]) - d[:, 1] * (-e[0])
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (p[0] * (-e[1]) - p[1] * (-e[0])) / den
            s = (d[:, 0] * p[1] - d[:, 1] * p[0]) / den
        hit = (np.abs(den) > 1e-12) & (s >= -1e-9) & (s <= 1 + 1e-9) & (t > 0)
        radii = np.where(hit, np.maximum(radii, np.nan_to_num(t)), radii)
    return radii


def _regular(n: int, phase: float = np.pi / 2) -> np.ndarray:
    ang = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(ang), np.sin(ang)], axis=1)


def _star(points: int, inner: float) -> np.ndarray:
    ang = np.pi / 2 + np.pi * np.arange(2 * points) / points
    r = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)


def _heart() -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
    pts = np.stack([x, y + 2.0], axis=1) / 17.0
    return pts


def _profile_from_function(fn) -> np.ndarray:
    return np.asarray(fn(_THETA), dtype=np.float64)


def _normalise(r: np.ndarray) -> np.ndarray:
    """Scale a profile so shapes of different kinds cover a similar area (mean squared radius 0.6)."""
    return r * np.sqrt(0.6 / np.mean(r**2))


_SHAPE_BUILDERS = {
    # seen in pretraining
    "circle": lambda: np.ones(N_ANGLES),
    "square": lambda: _polygon_profile(_regular(4, np.pi / 4)),
    "triangle": lambda: _polygon_profile(_regular(3)),
    "diamond": lambda: _polygon_profile(np.array([[0, 1.0], [0.55, 0], [0, -1.0], [-0.55, 0]])),
    "star": lambda: _polygon_profile(_star(5, 0.42)),
    "cross": lambda: _polygon_profile(
        np.array([[0.3, 1], [-0.3, 1], [-0.3, 0.3], [-1, 0.3], [-1, -0.3], [-0.3, -0.3], [-0.3, -1], [0.3, -1],
                  [0.3, -0.3], [1, -0.3], [1, 0.3], [0.3, 0.3]])
    ),
    "heart": lambda: _polygon_profile(_heart()),
    "pentagon": lambda: _polygon_profile(_regular(5)),
    "hexagon": lambda: _polygon_profile(_regular(6)),
    "octagon": lambda: _polygon_profile(_regular(8, np.pi / 8)),
    # withheld from pretraining (novel concepts and words)
    "heptagon": lambda: _polygon_profile(_regular(7)),
    "trefoil": lambda: _profile_from_function(lambda t: 0.55 + 0.45 * np.abs(np.cos(1.5 * (t - np.pi / 2)))),
    "cog": lambda: _profile_from_function(lambda t: np.where(np.cos(8 * t) > 0, 1.0, 0.72)),
    "bowtie": lambda: _polygon_profile(np.array([[1, 0.85], [0.08, 0.15], [-1, 0.85], [-1, -0.85], [-0.08, -0.15],
                                                 [1, -0.85]])[[0, 1, 2, 3, 4, 5]]),
    "arrow": lambda: _polygon_profile(np.array([[0, 1], [-0.8, 0.1], [-0.3, 0.1], [-0.3, -1], [0.3, -1], [0.3, 0.1],
                                                [0.8, 0.1]])),
    "teardrop": lambda: _profile_from_function(lambda t: 0.5 + 0.5 * ((1 + np.sin(t)) / 2) ** 3),
}

SEEN_SHAPES = ["circle", "square", "triangle", "diamond", "star", "cross", "heart", "pentagon", "hexagon", "octagon"]
WITHHELD_SHAPES = ["heptagon", "trefoil", "cog", "bowtie", "arrow", "teardrop"]


@lru_cache(maxsize=None)
def shape_profile(name: str) -> np.ndarray:
    """Normalised polar radius profile of a named shape (read-only array of ``N_ANGLES`` radii)."""
    if name not in _SHAPE_BUILDERS:
        raise KeyError(f"unknown shape {name!r}; known shapes: {sorted(_SHAPE_BUILDERS)}")
    r = _normalise(_SHAPE_BUILDERS[name]())
    r.setflags(write=False)
    return r


# Colours: hue in degrees, with fixed saturation/value; a few achromatic ones for backgrounds.
HUES = {
    "red": 0.0,
    "orange": 30.0,
    "yellow": 58.0,
    "green": 120.0,
    "cyan": 180.0,
    "blue": 228.0,
    "purple": 275.0,
    "pink": 320.0,
}
SEEN_COLOURS = list(HUES)
# Named fine shades, 8 to 12 degrees apart between orange and green: learned in pretraining, but close together.
SHADES = {
    "amber": 42.0,
    "gold": 50.0,
    "lemon": 62.0,
    "chartreuse": 72.0,
    "lime": 84.0,
}
ACHROMATIC = {"black": (20, 20, 20), "white": (235, 235, 235), "gray": (128, 128, 128)}


def hue_to_rgb(hue_deg: float, saturation: float = 0.85, value: float = 0.95) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, saturation, value)
    return int(round(255 * r)), int(round(255 * g)), int(round(255 * b))


# Fill textures of a shape. "solid" is the default fill.
SEEN_TEXTURES = ["solid", "striped", "dotted", "checkered"]
WITHHELD_TEXTURES = ["wavy", "speckled"]
SIZES = {"small": 0.42, "large": 0.88}
MEDIUM_SIZE = 0.65
POSITIONS = {"left": (-0.45, 0.0), "right": (0.45, 0.0), "top": (0.0, -0.45), "bottom": (0.0, 0.45)}
BACKGROUNDS = ["black", "gray", "white", "noisy"]

WITHHELD_WORDS = set(WITHHELD_SHAPES) | set(WITHHELD_TEXTURES) | {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "digit", "number",
    "handwritten",
}
