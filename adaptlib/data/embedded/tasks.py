"""Downstream tasks of the embedded world and the dials that control them.

A task names what its class is (a shape, a colour, a colour+shape pair, a texture) and which concepts are its
classes; the dials set how far apart the classes are, how much each class varies, and how far the rendering
style has moved from the pretraining corpus. Tasks can be written ``name@inter=0.3,intra=0.8,shift=0.5`` to
turn the dials from the command line or a sweep profile.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ...utils.names import unknown_name_error
from .concepts import (
    HUES,
    MEDIUM_SIZE,
    SEEN_COLOURS,
    SEEN_SHAPES,
    SHADES,
    hue_to_rgb,
    shape_profile,
)
from .digits import digits_split
from .render import Scene, render

IMAGE_SIZE = 32


@dataclass(frozen=True)
class Dials:
    """Controlled properties of a task.

    inter_class_distance: 1 = classes as their concepts define them; towards 0 all classes collapse into one
        (shapes morph towards their common mean outline, hues towards their mean hue, textures lose contrast).
    intra_class_variance: 0 = every image of a class alike; 1 = random rotation, scale, stretch, position,
        hue jitter, clutter, background and pixel noise.
    domain_shift: 0 = the pretraining style (filled shapes, plain backgrounds); 1 = outlines on foreign,
        colourful backgrounds.
    """

    inter_class_distance: float = 1.0
    intra_class_variance: float = 0.25
    domain_shift: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"dial {name}={value} is outside [0, 1]")


DIAL_ALIASES = {"inter": "inter_class_distance", "intra": "intra_class_variance", "shift": "domain_shift"}


@dataclass(frozen=True)
class TaskSpec:
    """One downstream task: its classes, prompt templates, split sizes and dials."""

    name: str
    kind: str  # shape | colour | composition | texture | digits
    classes: tuple[str, ...]
    templates: tuple[str, ...]
    dials: Dials = field(default_factory=Dials)
    per_class: tuple[int, int, int] = (40, 10, 60)  # train, val, test images per class
    seed: int = 0
    description: str = ""

    def key(self) -> str:
        """Stable identity of the task's content, for caches."""
        blob = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Two templates per task, averaged as CLIP does; templates[0] is the task's main prompt (like CoOp's per-dataset
# template). Every text-side method encodes classes x templates each step, so more templates cost time.
SHAPE_TEMPLATES = ("a photo of a {}.", "a picture of a {}.")
COLOUR_TEMPLATES = ("a photo of a {} shape.", "a picture of a {} object.")
TEXTURE_TEMPLATES = ("a photo of a {} shape.", "a shape with a {} texture.")
DIGIT_TEMPLATES = ("a photo of the number {}.", "a handwritten digit {}.")

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("shape", "shape", ("circle", "square", "triangle", "star", "cross", "heart", "diamond", "hexagon"),
                 SHAPE_TEMPLATES, dials=Dials(1.0, 0.1, 0.0), description="near-domain, coarse: eight pretraining shapes"),
        TaskSpec("colour", "colour", tuple(SEEN_COLOURS), COLOUR_TEMPLATES,
                 description="near-domain, coarse: eight pretraining colours on random shapes"),
        TaskSpec("composition", "composition",
                 tuple(f"{c} {s}" for c in ("red", "yellow", "green", "blue", "purple", "pink")
                       for s in ("circle", "square", "triangle", "star", "cross", "heart")),
                 SHAPE_TEMPLATES, dials=Dials(1.0, 0.1, 0.0), per_class=(24, 6, 16),
                 description="many classes: 36 colour-shape pairs"),
        TaskSpec("shade", "colour", tuple(SHADES), COLOUR_TEMPLATES, dials=Dials(1.0, 0.6, 0.0),
                 description="fine-grained: five named shades 8 to 12 degrees of hue apart"),
        TaskSpec("polygon", "shape", ("circle", "pentagon", "hexagon", "octagon"), SHAPE_TEMPLATES,
                 dials=Dials(1.0, 0.1, 0.0), description="fine-grained: near-identical polygons at 32 pixels"),
        TaskSpec("clutter", "shape", ("circle", "square", "triangle", "star", "cross", "heart"), SHAPE_TEMPLATES,
                 dials=Dials(1.0, 0.8, 0.3),
                 description="high intra-class variance: rotation, scale, stretch, clutter, noise, backgrounds"),
        TaskSpec("texture", "texture", ("solid", "striped", "dotted", "checkered", "wavy", "speckled"),
                 TEXTURE_TEMPLATES, description="texture: four pretraining fills and two never seen"),
        TaskSpec("novel", "shape", ("heptagon", "trefoil", "cog", "bowtie", "arrow", "teardrop"), SHAPE_TEMPLATES,
                 description="far: shapes whose images and words never occur in pretraining"),
        TaskSpec("digits", "digits", ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
                 DIGIT_TEMPLATES, per_class=(100, 20, 50),
                 description="far, out of domain: real handwritten digits (scikit-learn load_digits)"),
    ]
}


# Far and out-of-domain tasks, reported apart from the main suite as the benchmark's ImageNet variants are (a list
# here, not a TaskSpec field: a task's fields are its identity, and its data's seed)
FAR_TASKS = ("novel", "digits")


def parse_task_name(name: str) -> TaskSpec:
    """``shape`` or ``shape@inter=0.3,intra=0.8,shift=0.5`` -> the task spec with those dials."""
    base, _, dial_text = name.partition("@")
    if base not in TASKS:
        raise unknown_name_error("embedded task", base, TASKS)
    spec = TASKS[base]
    if not dial_text:
        return spec
    if spec.kind == "digits":
        raise ValueError(f"task {base!r} holds real images: its dials cannot be changed (got {name!r})")
    values = asdict(spec.dials)
    for item in dial_text.split(","):
        key, _, value = item.partition("=")
        field_name = DIAL_ALIASES.get(key.strip(), key.strip())
        if field_name not in values:
            raise ValueError(f"unknown dial {key!r} in {name!r}; dials are {sorted(DIAL_ALIASES)}")
        try:
            values[field_name] = float(value)
        except ValueError:
            raise ValueError(f"dial {key!r} in {name!r} needs a number, got {value!r}") from None
    dials = Dials(**values)
    canonical = f"{base}@inter={dials.inter_class_distance:g},intra={dials.intra_class_variance:g}," \
                f"shift={dials.domain_shift:g}"
    return replace(spec, name=canonical, dials=dials)


# --------------------------------------------------------------------------------------------- scene sampling


def _class_geometry(spec: TaskSpec) -> dict:
    """Per-class prototypes after the inter-class distance dial has pulled them towards their mean."""
    d = spec.dials.inter_class_distance
    out: dict = {}
    if spec.kind in ("shape", "composition"):
        shapes = [c.split(" ")[-1] for c in spec.classes]
        unique = sorted(set(shapes))
        mean = np.mean([shape_profile(s) for s in unique], axis=0)
        out["profiles"] = {s: mean + d * (shape_profile(s) - mean) for s in unique}
    if spec.kind in ("colour", "composition"):
        colours = [c.split(" ")[0] for c in spec.classes]
        hues = {c: HUES.get(c, SHADES.get(c)) for c in sorted(set(colours))}
        ang = np.deg2rad(list(hues.values()))
        centre = math.degrees(math.atan2(np.mean(np.sin(ang)), np.mean(np.cos(ang))))
        out["hues"] = {c: centre + d * (((h - centre + 180) % 360) - 180) for c, h in hues.items()}
    if spec.kind == "texture":
        out["contrast"] = d
    return out


def _nuisance(scene: Scene, rng: np.random.Generator, v: float, allow_rotation: bool = True) -> Scene:
    """Apply intra-class variance ``v`` to the nuisance attributes of a scene."""
    scene.size = float(np.clip(MEDIUM_SIZE + rng.uniform(-0.28, 0.25) * (0.3 + 0.7 * v), 0.3, 0.95))
    scene.rotation = float(rng.uniform(-np.pi, np.pi) * v) if allow_rotation else 0.0
    scene.aspect = float(1.0 + rng.uniform(-0.3, 0.3) * v)
    scene.centre = tuple(float(x) for x in rng.uniform(-0.3, 0.3, size=2) * v)
    if rng.random() < v:
        scene.background = str(rng.choice(["gray", "noisy", "white"]))
    n_clutter = rng.poisson(3.0 * v)
    scene.clutter = [
        (float(rng.uniform(-0.9, 0.9)), float(rng.uniform(-0.9, 0.9)), float(rng.uniform(0.04, 0.12)),
         tuple(int(x) for x in rng.integers(0, 256, size=3)))
        for _ in range(n_clutter)
    ]
    scene.pixel_noise = float(18.0 * v * rng.random())
    return scene


def sample_scene(spec: TaskSpec, label: int, rng: np.random.Generator, geometry: dict) -> Scene:
    """Draw one image description of class ``label`` of ``spec``."""
    v, shift = spec.dials.intra_class_variance, spec.dials.domain_shift
    cls = spec.classes[label]
    hue_jitter = rng.uniform(-1, 1) * (4.0 + 10.0 * v)
    if spec.kind == "shape":
        profile = geometry["profiles"][cls]
        colour = hue_to_rgb(HUES[str(rng.choice(SEEN_COLOURS))] + hue_jitter)
    elif spec.kind == "colour":
        profile = shape_profile(str(rng.choice(SEEN_SHAPES)))
        colour = hue_to_rgb(geometry["hues"][cls] + hue_jitter * 0.5)
    elif spec.kind == "composition":
        colour_name, shape_name = cls.split(" ")
        profile = geometry["profiles"][shape_name]
        colour = hue_to_rgb(geometry["hues"][colour_name] + hue_jitter * 0.5)
    elif spec.kind == "texture":
        profile = shape_profile(str(rng.choice(["circle", "square", "hexagon", "octagon"])))
        colour = hue_to_rgb(HUES[str(rng.choice(SEEN_COLOURS))] + hue_jitter)
    else:
        raise ValueError(f"task kind {spec.kind!r} has no procedural scenes")
    scene = Scene(profile=np.asarray(profile), colour=colour, noise_seed=int(rng.integers(2**31)))
    scene = _nuisance(scene, rng, v)
    if spec.kind == "texture":
        scene.texture = cls
        scene.size = max(scene.size, 0.8)
        scene.texture_contrast = geometry["contrast"]
        scene.texture_phase = float(rng.random())
        scene.texture_angle = float(rng.uniform(0, np.pi))
    scene.outline_only = shift
    scene.foreign_background = shift
    return scene


def generate_split(spec: TaskSpec, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images [N, 32, 32, 3] uint8 and labels [N] of one split, the same on every call for the same spec."""
    index = {"train": 0, "val": 1, "test": 2}[split]
    n = spec.per_class[index]
    if spec.kind == "digits":
        return digits_split(spec.classes, spec.per_class, spec.seed, split, IMAGE_SIZE)
    seed = int(hashlib.sha256(f"{spec.key()}/{split}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(seed)
    geometry = _class_geometry(spec)
    labels = np.repeat(np.arange(len(spec.classes)), n)
    images = np.stack([render(sample_scene(spec, int(y), rng, geometry), IMAGE_SIZE) for y in labels])
    return images, labels
