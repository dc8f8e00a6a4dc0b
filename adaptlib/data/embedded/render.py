"""Procedural renderer of the embedded world: one scene description -> one small RGB image.

Deterministic: everything random about a scene is drawn by the caller from a seeded generator and written into
the ``Scene``; rendering itself uses only the ``noise_seed`` stored in the scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from .concepts import ACHROMATIC, N_ANGLES

SUPERSAMPLE = 3


@dataclass
class Scene:
    """Everything needed to draw one image. Coordinates are in [-1, 1] with y pointing down."""

    profile: np.ndarray  # polar radius profile, N_ANGLES values
    colour: tuple[int, int, int]
    size: float = 0.65  # outer radius as a fraction of the half image side
    centre: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0  # radians
    aspect: float = 1.0  # horizontal stretch (intra-class variance)
    texture: str = "solid"
    texture_phase: float = 0.0
    texture_angle: float = 0.0
    texture_contrast: float = 1.0  # 0: the texture's dark parts vanish (inter-class distance of texture tasks)
    background: str = "black"
    clutter: list[tuple[float, float, float, tuple[int, int, int]]] = field(default_factory=list)  # x, y, r, rgb
    pixel_noise: float = 0.0  # std of additive Gaussian noise in 0..255 units
    outline_only: float = 0.0  # 0: filled shape (pretraining style) .. 1: outline only (domain shift)
    foreign_background: float = 0.0  # weight of a colourful smooth background (domain shift)
    noise_seed: int = 0


def _outline_points(scene: Scene, res: int) -> list[tuple[float, float]]:
    theta = np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)
    r = scene.profile * scene.size
    x = r * np.cos(theta + scene.rotation) * scene.aspect
    y = -r * np.sin(theta + scene.rotation)
    cx, cy = scene.centre
    half = res / 2.0
    return list(zip((x + cx) * half + half, (y + cy) * half + half))


def _texture_mask(kind: str, res: int, phase: float, angle: float, rng: np.random.Generator) -> np.ndarray:
    """Where the fill colour shows (1) versus a darker version of it (0), at render resolution."""
    if kind == "solid":
        return np.ones((res, res), np.float32)
    yy, xx = np.mgrid[0:res, 0:res].astype(np.float32) / SUPERSAMPLE
    u = xx * np.cos(angle) + yy * np.sin(angle)
    v = -xx * np.sin(angle) + yy * np.cos(angle)
    period = 5.0
    if kind == "striped":
        return (np.sin(2 * np.pi * (u / period + phase)) > 0).astype(np.float32)
    if kind == "checkered":
        a = np.sin(2 * np.pi * (u / (period + 1) + phase)) > 0
        b = np.sin(2 * np.pi * (v / (period + 1) + phase)) > 0
        return (a ^ b).astype(np.float32)
    if kind == "dotted":
        fu = (u / period + phase) % 1.0 - 0.5
        fv = (v / period + phase) % 1.0 - 0.5
        return 1.0 - ((fu**2 + fv**2) < 0.08).astype(np.float32)
    if kind == "wavy":
        return (np.sin(2 * np.pi * (u / period + 0.35 * np.sin(2 * np.pi * v / (2 * period)) + phase)) > 0).astype(
            np.float32
        )
    if kind == "speckled":
        low = rng.random((res // SUPERSAMPLE, res // SUPERSAMPLE)) > 0.45
        return np.kron(low, np.ones((SUPERSAMPLE, SUPERSAMPLE))).astype(np.float32)
    raise KeyError(f"unknown texture {kind!r}")


def _background(scene: Scene, res: int, rng: np.random.Generator) -> Image.Image:
    if scene.background == "noisy":
        cells = res // (4 * SUPERSAMPLE)
        low = rng.integers(40, 170, size=(cells, cells), dtype=np.uint8)
        img = Image.fromarray(low).resize((res, res), Image.NEAREST).convert("RGB")
    else:
        img = Image.new("RGB", (res, res), ACHROMATIC[scene.background])
    if scene.foreign_background > 0:
        yy, xx = np.mgrid[0:res, 0:res].astype(np.float32) / res
        c0, c1 = rng.integers(0, 256, size=(2, 3)).astype(np.float32)
        w = (xx * rng.uniform(-1, 1) + yy * rng.uniform(-1, 1) + 1) / 2
        grad = c0[None, None] * (1 - w[..., None]) + c1[None, None] * w[..., None]
        img = Image.blend(img, Image.fromarray(np.clip(grad, 0, 255).astype(np.uint8)), scene.foreign_background)
    return img


def render(scene: Scene, image_size: int) -> np.ndarray:
    """Draw ``scene`` as an ``image_size`` x ``image_size`` uint8 RGB array (supersampled, then box-filtered)."""
    res = image_size * SUPERSAMPLE
    half = res / 2.0
    rng = np.random.default_rng(scene.noise_seed)
    img = _background(scene, res, rng)
    draw = ImageDraw.Draw(img)
    for x, y, r, rgb in scene.clutter:
        cx, cy, rr = x * half + half, y * half + half, r * half
        draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=tuple(rgb))

    pts = _outline_points(scene, res)
    fill_alpha = int(round(255 * (1.0 - scene.outline_only)))
    if scene.texture == "solid" and fill_alpha == 255:
        draw.polygon(pts, fill=tuple(scene.colour))
    elif fill_alpha > 0:
        mask = Image.new("L", (res, res), 0)
        ImageDraw.Draw(mask).polygon(pts, fill=fill_alpha)
        colour = np.array(scene.colour, np.float32)
        if scene.texture == "solid":
            fill = Image.new("RGB", (res, res), tuple(scene.colour))
        else:
            tex = _texture_mask(scene.texture, res, scene.texture_phase, scene.texture_angle, rng)
            shade = 1.0 - 0.65 * scene.texture_contrast * (1.0 - tex[..., None])
            fill = Image.fromarray(np.clip(colour[None, None] * shade, 0, 255).astype(np.uint8))
        img.paste(fill, (0, 0), mask)
    if scene.outline_only > 0:
        mask = Image.new("L", (res, res), 0)
        ImageDraw.Draw(mask).line(pts + pts[:1], fill=int(round(255 * scene.outline_only)),
                                  width=max(1, int(1.6 * SUPERSAMPLE)))
        img.paste(Image.new("RGB", (res, res), tuple(scene.colour)), (0, 0), mask)

    small = img.resize((image_size, image_size), Image.BOX)
    if scene.pixel_noise <= 0:
        return np.asarray(small, np.uint8).copy()
    out = np.asarray(small, np.float32) + rng.normal(0.0, scene.pixel_noise, (image_size, image_size, 3))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
