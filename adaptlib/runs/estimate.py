"""The cost plan of a profile's grid: ``adaptlib sweep PROFILE --estimate [--device-tflops X --utilisation U]``.

GPU-hours are counted FLOPs divided by a sustained throughput (the device's dense peak times a utilisation). The
FLOPs come from ``torch.utils.flop_counter.FlopCounterMode`` on the profile's backbone built here with random
weights (no weights or data needed), through adaptlib's own model and training step, per method:

* a training step without the image encoder (text side, parts, logits, loss, backward), counted on this CPU at
  batch sizes 1 and 2 and at 1 and 2 classes, so that ``f(B, C) = f0 + fB B + fC C + fBC B C`` holds at any size
  (the text encoder's cost grows with the classes, CoCoOp's with batch x classes); with more than 128 prompts a
  step runs the text encoder in chunks under activation checkpointing, whose forward recomputation is added;
  prompt learners whose prompts share a prefix pack their classes after one copy of it, whose attention grows
  with the square of a packing's classes: their text features are counted per packing, at its class count;
* the image encoder's forward+backward and forward per image, counted on meta tensors (no arithmetic), for the
  methods that change it (their steps and their evaluation run it); one frozen forward per image otherwise;
* a step whose cost grows with the training set (Tip-Adapter-F's cache keys) counted at each run's own class
  count and shots.

Each run's steps come from its effective ``TrainConfig`` (epochs x steps per epoch, or iterations, with the
profile's caps); its training images from shots x classes (the base half in base-to-new). Class counts and test
sizes come from the data when the split files are under ``--data-root``, else from the registry's class counts and
the literature's split sizes (``TEST_IMAGES``), as the output says. Frozen image features are computed once per
dataset split (test, few-shot train views, val) and shared by every run that reads them, as the sweep's feature
cache does: they are one row of their own. CPU-side work (the linear probe's scikit-learn fit, Tip-Adapter's
alpha/beta search, data loading) is not counted. Peak memory is measured with one real training step at the
recipe's batch size and the method's largest class count on CUDA (``--device cuda``), else reported as n/a (CPU).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..backbones import load_backbone
from ..backbones.family import embed_dim
from ..backbones.text import prompt_features
from ..data.benchmarks import BENCHMARKS
from ..data.registry import get_dataset, is_embedded, is_folder_dataset
from ..methods import build_model
from ..methods.model import AdaptedCLIP
from ..methods.parts.base import ClassesNotSupported, Part
from ..methods.step import Batch, TrainFeatures
from .profile import Profile
from .spec import RunSpec, recipe_for

DEFAULT_DEVICE = "one NVIDIA H100 SXM"
DEFAULT_TFLOPS = 989.0  # its dense BF16 tensor-core peak in TFLOP/s (1,979 is the 2:4-sparse figure)
DEFAULT_UTILISATION = 0.40

# Test images per dataset as the literature's split files have them (CoOp's split_zhou_*.json; ImageNet: its 50,000
# val images; the ImageNet variants whole), used when the data are not on this machine.
TEST_IMAGES = {"imagenet": 50_000, "caltech101": 2_465, "oxford_pets": 3_669, "stanford_cars": 8_041,
               "oxford_flowers": 2_463, "food101": 30_300, "fgvc_aircraft": 3_333, "sun397": 19_850, "dtd": 1_692,
               "eurosat": 8_100, "ucf101": 3_783, "imagenet_v2": 10_000, "imagenet_sketch": 50_889,
               "imagenet_a": 7_500, "imagenet_r": 30_000}
# prompts as the measurement writes them: a class name of four tokens (``_names``) in CLIP's templates (the real
# prompts' lengths vary)
MEASURE_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "a drawing of a {}.", "a rendering of a {}.",
                     "a photo of the {}.", "a sketch of a {}.", "art of the {}.")
TEXT_CHUNK = 128  # AdaptedCLIP's default: more prompts than this run chunked under activation checkpointing


def _names(n: int) -> list[str]:
    """``n`` class names of one length in tokens (a CLIP tokenizer gives each digit a token), so a count at a few
    classes extrapolates exactly to many."""
    width = max(3, len(str(n - 1)))
    return [f"class {i:0{width}d}" for i in range(n)]


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()`` as torch's counter sees them (a multiply-add counts 2). Attention runs as plain matrix
    products here: the counter has no formula for the CPU's fused kernels (``_scaled_dot_product_flash_attention_
    for_cpu``, nn.MultiheadAttention's inference fast path), which would leave attention, or whole attention
    layers, uncounted; the count equals that of the fused kernels a GPU runs."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            fn()
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    return int(counter.get_total_flops())


@dataclass(frozen=True)
class DatasetFacts:
    classes: int
    test: int
    templates: tuple[str, ...]
    source: str  # "split files", "generated" (embedded tasks), "your folder" or "known counts"


def dataset_facts(name: str, data_root: str | None = None) -> DatasetFacts:
    """Class count, test images and prompt templates of ``name``: from the data where they are here."""
    if is_embedded(name):
        ds = get_dataset(name)
        return DatasetFacts(len(ds.classnames), len(ds.split("test")), tuple(ds.templates), "generated")
    if is_folder_dataset(name):
        ds = get_dataset(name)
        return DatasetFacts(len(ds.classnames), len(ds.split("test")), tuple(ds.templates), "your folder")
    info = BENCHMARKS[name]
    if data_root:
        try:
            ds = get_dataset(name, data_root)
            return DatasetFacts(len(ds.classnames), len(ds.split("test")), tuple(ds.templates), "split files")
        except (OSError, KeyError, ValueError):
            pass
    return DatasetFacts(info.num_classes, TEST_IMAGES[name], tuple(info.templates), "known counts")


@dataclass
class MethodCost:
    """What one method costs per step and per image, counted once and shared by all its runs."""

    trains: bool
    cached: bool  # frozen image encoder: trains and evaluates from the feature cache
    pooled: bool  # cached as the pooled features before the tower's projection, which the run trains (ProLIP)
    needs_fit: bool  # fits on frozen few-shot train and val features (Tip-Adapter's cache, the linear probe)
    tunes: bool  # a part chooses values on the few-shot val set
    text_trains: bool  # the text features change during training (prompt learners, tuned text towers)
    prompt_learner: bool
    head: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # f0, fB, fC, fBC without the image encoder
    recompute_ratio: float = 0.0  # a prompt's forward over its forward+backward (checkpointed chunks)
    image_train: float = 0.0  # image encoder forward+backward per training image (methods that change it)
    image_eval: float = 0.0  # the adapted image encoder's forward per image
    direct: Callable[[int, int, int], float] | None = None  # step FLOPs (B, C, K) counted at the run's size
    # prompt learners whose shared prefix is computed once per packing of classes (backbones.shared_prefix): the
    # text features' FLOPs (B, n) of one packing of n classes, counted at that size (its attention is quadratic in
    # n); ``head`` holds their bilinear fit ``packed_fit``, which ``step`` swaps for the counted packings
    packed_text: Callable[[int, int], float] | None = None
    packed_fit: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    packing: int = 0  # classes per packing

    def step(self, batch: int, classes: int, shots: int, templates: int) -> float:
        """FLOPs of one training step on ``batch`` images over ``classes`` classes."""
        if not self.trains:
            return 0.0
        if self.direct is not None:
            return self.direct(batch, classes, shots) + batch * self.image_train
        f0, fb, fc, fbc = self.head
        text = (fc + fbc * batch) * classes
        if self.packed_text is not None:
            p0, pb, pc, pbc = self.packed_fit
            packed = sum(self.packed_text(batch, n) for n in _packings(classes, self.packing))
            if classes > TEXT_CHUNK:
                packed *= 1 + self.recompute_ratio
            return f0 + fb * batch + text - (p0 + pb * batch + (pc + pbc * batch) * classes) + packed \
                + batch * self.image_train
        conditional = fbc > fc
        prompts = classes * (batch if conditional else 1) * (1 if self.prompt_learner else templates)
        if self.text_trains and prompts > TEXT_CHUNK:
            text *= 1 + self.recompute_ratio
        return f0 + fb * batch + text + batch * self.image_train


def _packings(classes: int, per: int) -> list[int]:
    """The class counts of the packings ``classes`` prompts are encoded in, ``per`` to a packing."""
    return [per] * (classes // per) + ([classes % per] if classes % per else [])


def _bilinear(counts: dict[tuple[int, int], float]) -> tuple[float, float, float, float]:
    """f0, fB, fC, fBC of f(B, C) = f0 + fB B + fC C + fBC B C from its values at B in {1, 2}, C in {c1, c2}."""
    (b1, b2), (c1, c2) = sorted({b for b, _ in counts}), sorted({c for _, c in counts})
    slope = {c: (counts[b2, c] - counts[b1, c]) / (b2 - b1) for c in (c1, c2)}
    intercept = {c: counts[b1, c] - slope[c] * b1 for c in (c1, c2)}
    fbc = (slope[c2] - slope[c1]) / (c2 - c1)
    fc = (intercept[c2] - intercept[c1]) / (c2 - c1)
    return intercept[c1] - fc * c1, slope[c1] - fbc * c1, fc, fbc


def _train_mode(model: AdaptedCLIP) -> None:
    """As the training loop sets it: the model in training mode, the frozen backbone in eval mode, parts training."""
    model.train()
    model.clip.eval()
    for part in model.parts:
        part.train()


def _fit(model: AdaptedCLIP, n: int, classes: int, device="cpu") -> None:
    """Fit the parts that need training features on ``n`` random features (their cost is not the point)."""
    dim = embed_dim(model.clip)
    feats = torch.randn(n, dim, device=device)
    labels = torch.arange(n, device=device) % classes
    data = TrainFeatures(feats.unsqueeze(1), feats, labels)
    for part in model.parts:
        if part.needs_training_features:
            part.fit(model, data, data)


def _resize_class_rows(model: AdaptedCLIP, old: int, new: int) -> None:
    """Give the class-specific parts' per-class tensors (rows = classes: CLAP's zero-shot base and multipliers, a
    zero-shot-initialised head) ``new`` random rows, so a step is counted at the run's class count without
    encoding its class names (only FLOPs are counted; the values do not matter)."""
    if old == new:
        return
    for part in model.parts:
        if not part.class_specific:
            continue
        for name, tensor in [*part.named_parameters(recurse=False), *part.named_buffers(recurse=False)]:
            if tensor.dim() >= 1 and tensor.shape[0] == old:
                rows = torch.randn(new, *tensor.shape[1:], dtype=tensor.dtype, device=tensor.device)
                setattr(part, name, nn.Parameter(rows, tensor.requires_grad) if isinstance(tensor, nn.Parameter)
                        else rows)
        if hasattr(part, "_trained_classes"):
            part._trained_classes = _names(new)


def _tunes(model: AdaptedCLIP) -> bool:
    return any(type(p).tune_on_validation is not Part.tune_on_validation for p in model.parts)


class FlopCounter:
    """Counts each method's FLOPs once on a random-weight copy of one backbone (this CPU; image side on meta)."""

    def __init__(self, backbone: str, quick_gelu: bool | None = None):
        self.name = backbone
        self.base = load_backbone(backbone, None, quick_gelu=quick_gelu)
        self.base.model.visual.to("meta")  # the image encoder is counted on meta tensors: no arithmetic
        self.dim = embed_dim(self.base.model)
        self.size = self.base.image_size
        self.costs: dict[tuple, MethodCost] = {}
        x = torch.empty(2, 3, self.size, self.size, device="meta")
        with torch.no_grad():
            from ..methods.encoders import encode_image

            self.frozen_image = count_flops(lambda: encode_image(self.base.model, x)) / 2
        # one prompt through the frozen text encoder (the zero-shot class features of evaluation)
        tokens = {n: self.base.tokenizer([MEASURE_TEMPLATES[0].format(c) for c in _names(n)]) for n in (2, 4)}
        with torch.no_grad():
            per = {n: count_flops(lambda n=n: prompt_features(self.base.model, tokens[n])) for n in (2, 4)}
        self.text_prompt = (per[4] - per[2]) / 2

    def _model(self, spec: RunSpec, classes: int, templates: int) -> AdaptedCLIP:
        backbone = copy.copy(self.base)
        backbone.model = copy.deepcopy(self.base.model)  # parts change the backbone they attach to
        return build_model(backbone, _names(classes), list(MEASURE_TEMPLATES[:templates]), recipe_for(spec),
                           "few_shot", "", spec.part_overrides())

    def _head_step(self, model: AdaptedCLIP, batch: int, classes: int, pooled: bool = False) -> int:
        """One training step with the image encoder's output given, so everything after the encoder is counted;
        when the encoder trains, the gradient flows back to its output as in the real step (``pooled``: from cached
        pooled features [B, W] through the trained projection [W, E], whose product and weight gradient, 2BWE FLOPs
        each, are added: the image tower, projection included, sits on meta tensors)."""
        feats = torch.randn(batch, self.dim)
        labels = torch.arange(batch) % classes
        projection = 4 * batch * model.clip.visual.proj.shape[0] * self.dim if pooled else 0
        if model.uses_image_encoder:
            data = Batch(labels=labels, encoded=feats.requires_grad_(True))
        else:
            data = Batch(labels=labels, features=feats)

        def step():
            out = model(data)
            loss, _ = model.loss(out)
            loss.backward()

        flops = count_flops(step)
        model.zero_grad(set_to_none=True)
        return flops + projection

    def method(self, spec: RunSpec, templates: int = 1) -> MethodCost:
        """The method's costs (cached per method, parts, options and template count)."""
        key = (spec.method, spec.hybrid_parts, spec.part_options, spec.feature_cache, templates)
        if key in self.costs:
            return self.costs[key]
        models = {c: self._model(spec, c, templates) for c in (1, 2)}
        m = models[1]
        pooled = spec.feature_cache and m.trains_on_pooled
        cost = MethodCost(trains=m.num_trainable() > 0, pooled=pooled,
                          cached=spec.feature_cache and not m.uses_image_encoder or pooled,
                          needs_fit=any(p.needs_training_features for p in m.parts), tunes=_tunes(m),
                          text_trains=m.uses_text_encoder, prompt_learner=m.prompt_learner is not None)
        if cost.trains and cost.needs_fit:
            cost.direct = self._direct(models[2])
        elif cost.trains:
            for model in models.values():
                _train_mode(model)
            cost.head = _bilinear({(b, c): self._head_step(models[c], b, c, pooled) for b in (1, 2) for c in (1, 2)})
            if models[2].prompt_packing():
                self._count_packings(spec, cost, models, templates)
            elif cost.text_trains:  # the same step with its prompts checkpointed chunk by chunk
                per_prompt = cost.head[2] + cost.head[3]
                models[2].text_chunk = 1
                chunked = self._head_step(models[2], 1, 2)
                models[2].text_chunk = TEXT_CHUNK
                plain = sum(cost.head) + cost.head[2] + cost.head[3]  # f(1, 2)
                cost.recompute_ratio = max(0.0, (chunked - plain) / (2 * per_prompt)) if per_prompt > 0 else 0.0
        if m.uses_image_encoder and not pooled:
            m.to("meta")
            _train_mode(m)
            images = torch.empty(2, 3, self.size, self.size, device="meta")
            if cost.trains:
                cost.image_train = count_flops(lambda: m.image_features_raw(Batch(images=images)).float().sum()
                                               .backward()) / 2
                if any(p.needs_frozen_image for p in m.parts):  # the frozen encoder's forward of each image too
                    cost.image_train += self.frozen_image
            m.eval()
            with torch.no_grad():
                cost.image_eval = count_flops(lambda: m.image_features_raw(Batch(images=images))) / 2
        self.costs[key] = cost
        return cost

    def _count_packings(self, spec: RunSpec, cost: MethodCost, models: dict[int, AdaptedCLIP], templates: int
                        ) -> None:
        """The text features of packed prompts (forward + backward; a checkpointed packing's recomputed forward as
        the forward's share, ``recompute_ratio``). Their FLOPs are a quadratic in a packing's class count (its
        positions, and its attention over them) and linear in the batch, so they are counted at 1-3 classes x 1-2
        images and extrapolated: exact while the measurement's class names have one length (``_names``)."""

        def counted(model: AdaptedCLIP, batch: int, backward: bool = True) -> float:
            image = F.normalize(torch.randn(batch, self.dim), dim=-1)
            if backward:
                flops = count_flops(lambda: model.text_features_raw(image).float().sum().backward())
            else:
                with torch.no_grad():
                    flops = count_flops(lambda: model.text_features_raw(image))
            model.zero_grad(set_to_none=True)
            return flops

        for model in models.values():
            _train_mode(model)
        counts = {(b, n): counted(models[n], b) for b in (1, 2) for n in (1, 2)}
        cost.packing = models[2].prompt_packing()
        cost.recompute_ratio = counted(models[2], 1, backward=False) / counts[1, 2]
        three = models[2]
        try:  # the 2-class model given 3 classes (no second backbone copy)
            with torch.no_grad():
                three.set_classes(_names(3))
        except ClassesNotSupported:  # class-specific context: a model of its own
            three = self._model(spec, 3, templates)
        _train_mode(three)
        counts.update({(b, 3): counted(three, b) for b in (1, 2)})

        def text_flops(batch: int, n: int) -> float:
            def at(b: int) -> float:
                one, two, three = counts[b, 1], counts[b, 2], counts[b, 3]
                return one + (n - 1) * (two - one) + (n - 1) * (n - 2) / 2 * (three - 2 * two + one)
            return at(1) + (batch - 1) * (at(2) - at(1))

        cost.packed_text = text_flops
        cost.packed_fit = _bilinear({(b, c): counts[b, c] for b in (1, 2) for c in (1, 2)})

    def _direct(self, model: AdaptedCLIP) -> Callable[[int, int, int], float]:
        """Steps whose cost grows with the training set, counted at the run's own classes and shots (batch 2,
        scaled: every term of such a step is per image). Needs a model whose text features stay fixed."""
        if model.uses_text_encoder or model.uses_image_encoder:
            raise NotImplementedError("a trainable cache with a changing encoder is not estimated")
        seen: dict[tuple[int, int], float] = {}

        def step(batch: int, classes: int, shots: int) -> float:
            if (classes, shots) not in seen:
                _resize_class_rows(model, len(model.classnames), classes)
                model.classnames = _names(classes)
                model.zero_shot_text = F.normalize(torch.randn(classes, self.dim), dim=-1)
                _fit(model, classes * shots, classes)
                _train_mode(model)
                seen[classes, shots] = self._head_step(model, 2, classes) / 2
            return seen[classes, shots] * batch

        return step


# ---------------------------------------------------------------------------------------------------- the plan
@dataclass
class MethodTotals:
    runs: int = 0
    steps: int = 0
    train: float = 0.0
    eval: float = 0.0
    memory: str = "n/a (CPU)"


@dataclass
class Estimate:
    profile: str
    runs: int
    methods: dict[str, MethodTotals]
    shared: float  # the frozen image features' FLOPs, computed once per split and shared
    tflops: float
    utilisation: float
    device: str
    facts: dict[str, DatasetFacts]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def sustained(self) -> float:
        return self.tflops * 1e12 * self.utilisation

    def hours(self, flops: float) -> float:
        return flops / self.sustained / 3600

    @property
    def total_flops(self) -> float:
        return sum(m.train + m.eval for m in self.methods.values()) + self.shared

    def table(self) -> str:
        unit, scale = next((u, s) for u, s in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6))
                           if self.total_flops >= s or u == "MFLOP")
        head = ["method", "runs", "train steps", f"train {unit}", f"eval {unit}", "GPU-hours", "peak memory"]
        rows = [[name, f"{m.runs:,}", f"{m.steps:,}", _num(m.train / scale), _num(m.eval / scale),
                 _num(self.hours(m.train + m.eval)), m.memory] for name, m in self.methods.items()]
        rows.append(["frozen image features (shared cache)", "", "", "", _num(self.shared / scale),
                     _num(self.hours(self.shared)), ""])
        train = sum(m.train for m in self.methods.values())
        rows.append(["total", f"{self.runs:,}", f"{sum(m.steps for m in self.methods.values()):,}",
                     _num(train / scale), _num((self.total_flops - train) / scale), _num(self.hours(self.total_flops)),
                     ""])
        widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
        line = lambda r: "| " + " | ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)  # noqa: E731
                                            for i, (v, w) in enumerate(zip(r, widths))) + " |"
        sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
        return "\n".join([line(head), sep, *(line(r) for r in rows)])

    def report(self) -> str:
        sources: dict[str, list[str]] = {}
        for name, f in self.facts.items():
            sources.setdefault(f.source, []).append(name)
        lines = [f"cost plan of profile {self.profile}: {self.runs:,} runs, {_num(self.total_flops / 1e15)} PFLOP, "
                 f"{_num(self.hours(self.total_flops))} GPU-hours on {self.device} at {self.tflops:g} TFLOP/s x "
                 f"{self.utilisation:.0%} utilisation = {self.sustained / 1e12:,.0f} TFLOP/s sustained", "",
                 self.table(), ""]
        for source, names in sources.items():
            what = {"known counts": "class counts from the dataset registry, test sizes from the literature's split "
                                    "files (TEST_IMAGES; the split files are not under --data-root here)",
                    "split files": "class and test counts read from the split files under --data-root",
                    "generated": "class and test counts of the generated embedded tasks"}[source]
            lines.append(f"{what}: {', '.join(names)}")
        lines += self.notes
        lines.append(f"(FLOPs counted in {self.seconds:.0f} s)")
        return "\n".join(lines)


def _num(x: float) -> str:
    """1,234 / 12.3 / 1.23 / 0.0123: three significant digits below 100, whole numbers above."""
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{max(0, 2 - math.floor(math.log10(abs(x))))}f}"


def _eval_sets(spec: RunSpec, facts: dict[str, DatasetFacts]) -> list[tuple[str, int, int]]:
    """(dataset, classes, test images) of every class set a run evaluates."""
    f = facts[spec.dataset]
    if spec.setting == "base_to_new":
        base = math.ceil(f.classes / 2)
        test_base = round(f.test * base / f.classes)
        return [(spec.dataset, base, test_base), (spec.dataset, f.classes - base, f.test - test_base)]
    out = [(spec.dataset, f.classes, f.test)]
    out += [(t, facts[t].classes, facts[t].test) for t in spec.eval_datasets]
    return out


def estimate_profile(profile: Profile, tflops: float = DEFAULT_TFLOPS, utilisation: float = DEFAULT_UTILISATION,
                     device: str = DEFAULT_DEVICE, data_root: str | None = None, memory_device: str = "cpu"
                     ) -> Estimate:
    """The FLOPs and GPU-hours of every run of ``profile``, by method label, plus the shared frozen features."""
    if tflops <= 0 or not 0 < utilisation <= 1:
        raise ValueError(f"--device-tflops must be > 0 and --utilisation in (0, 1], got {tflops}, {utilisation}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the counted steps are tiny: more threads only wait on each other
    try:
        return _estimate(profile, tflops, utilisation, device, data_root, memory_device)
    finally:
        torch.set_num_threads(threads)


def _estimate(profile: Profile, tflops: float, utilisation: float, device: str, data_root: str | None,
              memory_device: str) -> Estimate:
    start = time.perf_counter()
    specs = profile.expand()
    names = {d for s in specs for d in (s.dataset, *s.eval_datasets)}
    facts = {name: dataset_facts(name, data_root) for name in sorted(names, key=lambda n: (is_embedded(n), n))}
    counters: dict[str, FlopCounter] = {}
    methods: dict[str, MethodTotals] = {}
    shared: dict[tuple, float] = {}
    largest: dict[str, tuple[int, RunSpec]] = {}
    for spec in specs:
        if spec.backbone not in counters:
            counters[spec.backbone] = FlopCounter(spec.backbone, spec.quick_gelu)
        counter = counters[spec.backbone]
        recipe = recipe_for(spec)
        cfg = recipe.train_config(spec.setting, spec.dataset).with_overrides(spec.train_overrides())
        f = facts[spec.dataset]
        templates = len(recipe.templates_for(spec.dataset, f.templates))
        cost = counter.method(spec, templates)
        subset = "base" if spec.setting == "base_to_new" else "all"
        classes = math.ceil(f.classes / 2) if subset == "base" else f.classes
        n_train, n_val = spec.shots * classes, min(spec.shots, 4) * classes
        totals = methods.setdefault(spec.method_label, MethodTotals())
        totals.runs += 1
        if cost.trains:
            steps = cfg.total_steps(spec.shots, n_train)
            batch = min(cfg.batch_size, n_train)
            totals.steps += steps
            totals.train += steps * cost.step(batch, classes, spec.shots, templates)
            if classes >= largest.get(spec.method_label, (0, None))[0]:
                largest[spec.method_label] = (classes, spec)
        sets = _eval_sets(spec, facts)
        images = sum(n for _, _, n in sets) + (n_val if cost.tunes else 0)
        prompts = 2 * classes * templates + sum(2 * c * len(recipe.templates_for(d, facts[d].templates))
                                                for d, c, _ in sets)
        totals.eval += (0 if cost.cached else images * cost.image_eval) + prompts * counter.text_prompt
        # the frozen features each run reads, computed once per split by whichever run comes first
        frozen = counter.frozen_image
        for d, _, _ in sets:
            shared[spec.backbone, "test", d] = facts[d].test * frozen
        split = (spec.backbone, spec.dataset, subset, spec.shots, spec.seed)
        if cost.cached and cost.trains:
            crop = spec.crop_scale or recipe.crop_scale
            shared[(*split, "pooled" if cost.pooled else "views", crop, cfg.views)] = n_train * cfg.views * frozen
        if cost.needs_fit:
            shared[(*split, "train")] = n_train * frozen
        if cost.needs_fit or cost.tunes:
            shared[(*split, "val")] = n_val * frozen
    notes = []
    if memory_device.startswith("cuda") and torch.cuda.is_available():
        for label, totals in methods.items():
            totals.memory = peak_memory(largest[label][1], largest[label][0], memory_device) if label in largest \
                else "no training step"
        notes.append(f"peak memory: torch.cuda.max_memory_allocated of one training step at the recipe's batch size "
                     f"and the method's largest class count, bf16 autocast, on {torch.cuda.get_device_name()}")
    else:
        notes.append("peak memory: n/a (CPU): it is measured on CUDA only (--device cuda), with one training step "
                     "at the recipe's batch size and the method's largest class count")
    notes.append("not counted: CPU work (scikit-learn's linear probe, Tip-Adapter's alpha/beta grid search), data "
                 "loading and augmentation; utilisation is an assumption (batch-1 CoCoOp and batch-4 VPT steps use "
                 "a GPU far less well)")
    return Estimate(profile.name, len(specs), methods, sum(shared.values()), tflops, utilisation, device, facts,
                    time.perf_counter() - start, notes)


def peak_memory(spec: RunSpec, classes: int, device: str) -> str:
    """Peak CUDA memory of one training step of ``spec``'s method at its batch size over ``classes`` classes."""
    from ..training.loop import autocast_for

    recipe = recipe_for(spec)
    cfg = recipe.train_config(spec.setting, spec.dataset).with_overrides(spec.train_overrides())
    dev = torch.device(device)
    backbone = load_backbone(spec.backbone, None, device=dev, quick_gelu=spec.quick_gelu)
    model = build_model(backbone, _names(classes), [MEASURE_TEMPLATES[0]], recipe, "few_shot", "",
                        spec.part_overrides()).to(dev)
    batch = cfg.batch_size
    if any(p.needs_training_features for p in model.parts):
        _fit(model, classes * spec.shots, classes, dev)
    _train_mode(model)
    labels = torch.arange(batch, device=dev) % classes
    if model.uses_image_encoder:
        data = Batch(labels=labels, images=torch.randn(batch, 3, backbone.image_size, backbone.image_size,
                                                       device=dev))
    else:
        data = Batch(labels=labels, features=torch.randn(batch, embed_dim(model.clip), device=dev))
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    with autocast_for(dev):
        out = model(data)
        loss, _ = model.loss(out)
    loss.backward()
    torch.cuda.synchronize(dev)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30
    del model, backbone, out, loss
    torch.cuda.empty_cache()
    return f"{peak:.1f} GiB (B={batch}, C={classes})"
