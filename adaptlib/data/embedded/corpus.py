"""The pretraining corpus of the embedded world: image-caption pairs over the seen vocabulary.

Captions name a random subset of a scene's attributes (size, texture, colour, shape, background, position) in
one of several templates, so the backbone learns partial, compositional descriptions as web captions give them.
Nothing in ``concepts.WITHHELD_*`` appears, neither as an image nor as a word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .concepts import (
    BACKGROUNDS,
    HUES,
    MEDIUM_SIZE,
    POSITIONS,
    SEEN_SHAPES,
    SEEN_TEXTURES,
    SHADES,
    SIZES,
    WITHHELD_WORDS,
    hue_to_rgb,
    shape_profile,
)
from .render import Scene, render

CAPTION_TEMPLATES = (
    "a {desc}.",
    "a photo of a {desc}.",
    "a picture of a {desc}.",
    "there is a {desc}.",
    "a {desc} on a {background} background.",
    "a {desc} on the {position}.",
    "a {desc} with a {texture} texture.",
    "a {texture} pattern.",
)
COLOUR_NAMES = {**HUES, **SHADES}


@dataclass(frozen=True)
class CorpusConfig:
    size: int = 60_000
    image_size: int = 32
    seed: int = 0
    nuisance: float = 0.35  # intra-class variance of the corpus (rotation, clutter, noise, backgrounds)
    group: int = 8  # consecutive pairs share a colour, so a batch of whole groups holds hard negatives
    clean_fraction: float = 0.0  # the first pairs are clean scenes (the curriculum's easy start)


def _pick(rng: np.random.Generator, items, p=None):
    return items[int(rng.choice(len(items), p=p))]


def sample_pair(rng: np.random.Generator, image_size: int, nuisance: float,
                colour: str | None = None, clean: bool = False) -> tuple[np.ndarray, str, str]:
    """One rendered scene, one caption describing part of it, and the scene's shape.

    A ``clean`` scene is a solid, centred, medium-sized shape on black with no clutter: the easy start of the
    pretraining curriculum.
    """
    shape = _pick(rng, SEEN_SHAPES)
    colour = colour or _pick(rng, list(COLOUR_NAMES))
    texture = _pick(rng, SEEN_TEXTURES, p=[0.55, 0.15, 0.15, 0.15])
    background = _pick(rng, BACKGROUNDS, p=[0.55, 0.15, 0.15, 0.15])
    size_word = _pick(rng, ["small", "medium", "large"], p=[0.25, 0.5, 0.25])
    position = _pick(rng, ["centre", *POSITIONS], p=[0.6, 0.1, 0.1, 0.1, 0.1])
    if clean:
        texture, background, size_word, position, nuisance = "solid", "black", "medium", "centre", 0.0

    v = nuisance
    size = SIZES.get(size_word, MEDIUM_SIZE) + rng.uniform(-0.05, 0.05)
    if position != "centre":
        size = min(size, 0.5)
        centre = tuple(np.array(POSITIONS[position]) + rng.uniform(-0.08, 0.08, 2))
    else:
        centre = tuple(rng.uniform(-0.2, 0.2, 2) * v)
    scene = Scene(
        profile=shape_profile(shape),
        colour=hue_to_rgb(COLOUR_NAMES[colour] + rng.uniform(-4, 4)),
        size=float(size),
        centre=(float(centre[0]), float(centre[1])),
        rotation=float(rng.uniform(-np.pi, np.pi) * v),
        aspect=float(1 + rng.uniform(-0.2, 0.2) * v),
        texture=texture,
        texture_phase=float(rng.random()),
        texture_angle=float(rng.uniform(0, np.pi)),
        background=background,
        clutter=[(float(rng.uniform(-0.9, 0.9)), float(rng.uniform(-0.9, 0.9)), float(rng.uniform(0.04, 0.1)),
                  tuple(int(x) for x in rng.integers(0, 256, 3))) for _ in range(rng.poisson(1.5 * v))],
        pixel_noise=float(12 * v * rng.random()),
        noise_seed=int(rng.integers(2**31)),
    )
    image = render(scene, image_size)
    return image, caption_for(rng, shape, colour, texture, background, size_word, position), shape


def caption_for(rng: np.random.Generator, shape: str, colour: str, texture: str, background: str, size_word: str,
                position: str) -> str:
    say_shape = rng.random() < 0.85
    say_colour = rng.random() < 0.65 or not say_shape
    adjectives = []
    if size_word != "medium" and rng.random() < 0.5:
        adjectives.append(size_word)
    if texture != "solid" and rng.random() < 0.5:
        adjectives.append(texture)
    if say_colour:
        adjectives.append(colour)
    noun = shape if say_shape else _pick(rng, ["shape", "object"])
    desc = " ".join([*adjectives, noun])
    options = [0, 1, 2, 3]
    if background != "black" or rng.random() < 0.2:
        options.append(4)
    if position != "centre":
        options += [5, 5]
    if texture != "solid" and texture not in adjectives:
        options += [6, 6, 7]
    template = CAPTION_TEMPLATES[_pick(rng, options)]
    caption = template.format(desc=desc, background=background, position=position, texture=texture)
    assert not (set(caption.rstrip(".").split()) & WITHHELD_WORDS), caption
    return caption


def build_corpus(config: CorpusConfig, progress: bool = True) -> tuple[np.ndarray, list[str], list[str]]:
    """All pairs of the corpus: images [N, S, S, 3] uint8, captions and each image's shape name.

    The same config always gives the same corpus.
    """
    from tqdm.auto import tqdm

    rng = np.random.default_rng(config.seed)
    images = np.empty((config.size, config.image_size, config.image_size, 3), np.uint8)
    captions, shapes = [], []
    colour = None
    for i in tqdm(range(config.size), desc="render corpus", disable=not progress, mininterval=2):
        if i % config.group == 0:
            colour = _pick(rng, list(COLOUR_NAMES))
        clean = i < config.clean_fraction * config.size
        images[i], caption, shape = sample_pair(rng, config.image_size, config.nuisance, colour, clean)
        captions.append(caption)
        shapes.append(shape)
    return images, captions, shapes
