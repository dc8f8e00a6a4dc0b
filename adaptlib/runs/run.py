"""Execute one run: build the task and the method's model, fit, train, tune on val, evaluate, report.

Settings: ``few_shot`` (train and test on all classes), ``base_to_new`` (train on the base half, test on base
and on new classes), ``cross_dataset`` (train on the source, test on each of ``eval_datasets``, which includes
domain generalisation to target-only ImageNet variants).
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..backbones import load_backbone
from ..data.protocol import FewShotTask, sample_few_shot, subsample_classes
from ..data.registry import get_dataset
from ..data.transforms import TransformConfig
from ..methods import build_model
from ..methods.encoders import project_pooled
from ..methods.model import AdaptedCLIP
from ..methods.parts.base import ClassesNotSupported, Part
from ..methods.state import save_adapted_state
from ..methods.step import Batch, TrainFeatures
from ..training.data import FeatureBatches, ImageBatches
from ..training.evaluate import accuracy, calibration_metrics, encode_adapted, predict, predict_logits
from ..training.features import FeatureCache, frozen_features
from ..training.loop import TrainLog, train
from ..training.together import Member, alone_reason, group_key, train_together
from ..utils.seeding import seed_everything
from ..utils.versions import code_version, library_versions
from .selection import FIXED, ORACLE_TEST
from .spec import RunSpec, recipe_for


@dataclass
class RunContext:
    """Where and how runs execute; not part of a run's identity."""

    device: str = "auto"
    data_root: str | None = None
    cache: FeatureCache | None = None
    threads: int | None = None
    num_workers: int = 0
    progress: bool = False
    batch_size_eval: int = 256
    # "test": score test (and, as every run does, the few-shot validation set); "val": the few-shot validation set
    # only (hyper-parameter calibration never sees test)
    evaluate_on: str = "test"
    state_dir: str | None = None  # where runs with save_state write their trained parameters
    # when given, ``execute`` adds the seconds of each phase (build, fit_and_train, tune, evaluate, save) to it: what
    # the benchmarks measure as overhead; not part of the result
    phase_seconds: dict | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_description(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.processor() or platform.machine()}:{torch.get_num_threads()}threads"


@dataclass
class TestRecord:
    """What a run records of each test split beyond its accuracy: calibration metrics (into ``metrics``),
    per-class accuracies and reliability bins, each by the split's name."""
    metrics: dict = field(default_factory=dict)
    per_class: dict = field(default_factory=dict)
    reliability: dict = field(default_factory=dict)

    def add(self, name: str, probabilities: torch.Tensor, labels: torch.Tensor, classnames: list[str],
            prefix: str = "", suffix: str = "") -> None:
        values, per_class, bins = calibration_metrics(probabilities, labels, classnames)
        self.metrics.update({prefix + metric + suffix: value for metric, value in values.items()})
        self.per_class[name] = per_class
        self.reliability[name] = bins


@dataclass
class Run:
    """Everything one run works with, built once by ``Run.build``."""

    spec: RunSpec
    ctx: RunContext
    device: torch.device
    cache: FeatureCache
    backbone: object
    task: FewShotTask  # all classes
    train_task: FewShotTask  # what the model trains on (the base half in base-to-new)
    model: AdaptedCLIP
    tf_cfg: TransformConfig
    cached_mode: bool  # frozen image encoder (or all but its projection): train and evaluate from cached features
    recipe: object = None  # the method's recipe: its own prompt templates where its reference code has them

    def templates_for(self, dataset: str, default) -> list[str]:
        """The prompt templates of this run's method on ``dataset`` (``Recipe.templates_for``): the model's class
        prompts and every zero-shot target (text regularisers) use them, on every class set the run evaluates."""
        return self.recipe.templates_for(dataset, default) if self.recipe is not None else list(default)

    @classmethod
    def build(cls, spec: RunSpec, ctx: RunContext, recipe) -> "Run":
        device = resolve_device(ctx.device)
        cache = ctx.cache if ctx.cache is not None else FeatureCache()
        if not spec.feature_cache:
            cache = FeatureCache(None)
        backbone = load_backbone(spec.backbone, spec.pretrained, device=device, quick_gelu=spec.quick_gelu, seed=0)
        dataset = get_dataset(spec.dataset, ctx.data_root)
        task = sample_few_shot(dataset, spec.shots, spec.seed)
        train_task = subsample_classes(task, "base") if spec.setting == "base_to_new" else task
        model = build_model(backbone, train_task.classnames, recipe.templates_for(spec.dataset, dataset.templates),
                            recipe, spec.setting, spec.dataset, spec.part_overrides()).to(device)
        tf_cfg = TransformConfig.for_backbone(backbone, crop_scale=spec.crop_scale or recipe.crop_scale)
        return cls(spec, ctx, device, cache, backbone, task, train_task, model, tf_cfg,
                   spec.feature_cache and (not model.uses_image_encoder or model.trains_on_pooled), recipe)

    @property
    def pooled_mode(self) -> bool:
        """Cached, with the tower's last projection trained: the cache holds the pooled features before it."""
        return self.cached_mode and self.model.uses_image_encoder

    @property
    def ensemble_parts(self) -> list[Part]:
        """Parts whose ensemble weight ``alpha`` acts only at inference, so a sweep over it needs no retraining."""
        return self.model.parts_with_inference_option("alpha")

    def frozen(self, task: FewShotTask, samples, split: str, views: int = 0, pooled: bool = False) -> torch.Tensor:
        """The frozen backbone's features of ``samples``: from the cache, or encoded by the backbone with every
        part switched off and its trained weights at their frozen values. The model's CLIP is the backbone's own
        module, which parts tune in place (LayerNorms, biases) or wrap (LoRA): encoded after training without
        ``frozen_view``, the adapted features would be cached as frozen ones for every later run of the task."""
        with self.model.frozen_view():
            return frozen_features(self.backbone, task, samples, split, self.tf_cfg, self.device, self.cache,
                                   views=views, seed=self.spec.seed, batch_size=self.ctx.batch_size_eval,
                                   num_workers=self.ctx.num_workers, progress=self.ctx.progress, pooled=pooled)

    def labels(self, samples) -> torch.Tensor:
        return torch.tensor([s.label for s in samples], dtype=torch.long)

    # ------------------------------------------------------------------------------------------ fit and train
    def fit(self, train_cfg) -> tuple[dict, Member | None]:
        """Fit the parts that read training features, then what training needs (None: nothing trains)."""
        spec, model, tt = self.spec, self.model, self.train_task
        has_trainable = model.num_trainable() > 0
        needs_fit = any(p.needs_training_features for p in model.parts)
        views = None
        if (self.cached_mode and has_trainable) or needs_fit:
            views = self.frozen(tt, tt.train, f"train-{spec.shots}shot", views=train_cfg.views,
                                pooled=self.pooled_mode and not needs_fit)
        chosen: dict = {}
        if needs_fit:
            train_feats = TrainFeatures(views, self.frozen(tt, tt.train, f"train-{spec.shots}shot"),
                                        self.labels(tt.train))
            val_feats = self.selection_features()
            for part in model.parts:
                if part.needs_training_features:
                    chosen[part.name] = part.fit(model, train_feats, val_feats)
        if not has_trainable:
            return chosen, None
        total_steps = train_cfg.total_steps(spec.shots, len(tt.train))
        per_epoch = train_cfg.steps_per_epoch(len(tt.train))
        torch.manual_seed(spec.seed)  # training draws never depend on what the feature cache held
        if self.cached_mode:
            if self.pooled_mode and needs_fit:  # the fit read the projected views; training reads the pooled
                views = self.frozen(tt, tt.train, f"train-{spec.shots}shot", views=train_cfg.views, pooled=True)
            batches = FeatureBatches(views, self.labels(tt.train), train_cfg.batch_size, spec.seed,
                                     pooled=self.pooled_mode)
        else:
            batches = ImageBatches(tt, tt.train, self.tf_cfg, train_cfg.batch_size, spec.seed, self.ctx.num_workers,
                                   encode_with=None if model.uses_image_encoder else model.clip, device=self.device)
        return chosen, Member(model, batches, train_cfg, total_steps, per_epoch, len(tt.train))

    # ------------------------------------------------------------------------------------------ evaluation
    def features_for(self, task: FewShotTask, samples, split: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """(frozen features, the adapted encoder's features) of ``samples``, each computed only if needed."""
        frozen = self.frozen(task, samples, split)
        encoded = None
        if self.pooled_mode:  # the trained projection of the cached pooled features
            with torch.no_grad():
                pooled = self.frozen(task, samples, split, pooled=True).to(self.device)
                encoded = project_pooled(self.model.clip, pooled).float().cpu()
        elif not self.cached_mode:
            encoded = encode_adapted(self.model, task, samples, self.tf_cfg, self.device, self.ctx.batch_size_eval,
                                     self.ctx.num_workers)
        return frozen, encoded

    def score(self, task: FewShotTask, samples, split: str, cache: dict | None = None,
              record: "TestRecord | None" = None, name: str | None = None, prefix: str = "",
              suffix: str = "") -> float:
        """Accuracy on ``samples``; with ``record`` also the calibration metrics (ECE, NLL, worst-class accuracy,
        named ``prefix + metric + suffix``), the per-class accuracies and the reliability bins, under ``name``."""
        key = (split, len(samples))
        if cache is not None and key in cache:
            frozen, encoded = cache[key]
        else:
            frozen, encoded = self.features_for(task, samples, split)
            if cache is not None:
                cache[key] = (frozen, encoded)
        y = self.labels(samples)
        logits = predict_logits(self.model, y, self.device, frozen=frozen, encoded=encoded)
        if record is not None:
            record.add(name or split, self.model.probabilities(logits), y, task.classnames, prefix, suffix)
        return accuracy(logits.argmax(dim=1), y)

    def selection_split(self) -> tuple[list, str] | None:
        """(samples, cache split name) that the run's non-gradient choices are made on: the few-shot validation
        set, the test split of the training classes (``oracle_test``), or None (``fixed``: no data)."""
        tt, selection = self.train_task, self.spec.selection
        if selection == FIXED:
            return None
        if selection == ORACLE_TEST:
            return tt.test, "test-base" if self.spec.setting == "base_to_new" else "test"
        return tt.val, f"val-{self.spec.shots}shot"

    def selection_features(self) -> TrainFeatures | None:
        """Frozen features of the selection split, for parts that fit on it (a linear probe's C)."""
        split = self.selection_split()
        if split is None:
            return None
        samples, name = split
        return TrainFeatures(None, self.frozen(self.train_task, samples, name), self.labels(samples))

    def tune(self) -> dict:
        """Hyper-parameters that parts choose after training: on the few-shot validation set (never on test),
        unless the run's selection is ``fixed`` (each part's fixed setting) or ``oracle_test`` (on test)."""
        tunable = [p for p in self.model.parts if type(p).tune_on_validation is not Part.tune_on_validation]
        if not tunable:
            return {}
        split = self.selection_split()
        if split is None:
            return {p.name: p.fixed_choice() for p in tunable}
        samples, name = split
        frozen, encoded = self.features_for(self.train_task, samples, name)
        y = self.labels(samples)

        def evaluate_val() -> float:
            return accuracy(predict(self.model, y, self.device, frozen=frozen, encoded=encoded), y)

        @torch.no_grad()
        def forward_val():
            self.model.eval()
            batch = Batch(labels=y, features=frozen, encoded=encoded).to(self.device)
            return self.model(batch), y.to(self.device)

        return {p.name: p.tune_on_validation(self.model, evaluate_val, forward_val) for p in tunable}

    def evaluate(self, features_cache: dict, record: "TestRecord | None" = None) -> dict:
        """Metrics of the setting with the model as it is configured now; with ``record`` (filled with each test
        split's per-class accuracy and reliability bins) also the test splits' calibration metrics."""
        spec, tt = self.spec, self.train_task
        metrics: dict = record.metrics if record is not None else {}
        if spec.setting == "base_to_new":
            self.model.set_classes(tt.classnames, self.templates_for(tt.dataset.name, tt.templates))
            base = self.score(tt, tt.test, "test-base", features_cache, record, prefix="base_")
            new_task = subsample_classes(self.task, "new")
            try:
                new_templates = self.templates_for(new_task.dataset.name, new_task.templates)
                self.model.set_classes(new_task.classnames, new_templates)
                new = self.score(new_task, new_task.test, "test-new", features_cache, record, prefix="new_")
            except ClassesNotSupported as err:
                new, metrics["new_note"] = None, str(err)
            hm = 2 * base * new / (base + new) if new is not None and base + new > 0 else None
            metrics.update({"base_accuracy": base, "new_accuracy": new, "hm": hm})
        elif self.ctx.evaluate_on == "test":
            self.model.set_classes(tt.classnames, self.templates_for(tt.dataset.name, tt.templates))
            metrics["accuracy"] = self.score(tt, tt.test, "test", features_cache, record)
            for target in spec.eval_datasets:
                metrics[f"accuracy@{target}"] = self.score_target(target, record)
        if tt.val:  # what a practitioner sees: the few-shot validation set (min(K, 4) per class), never test
            self.model.set_classes(tt.classnames, self.templates_for(tt.dataset.name, tt.templates))
            metrics["val_accuracy"] = self.score(tt, tt.val, f"val-{spec.shots}shot", features_cache)
        return metrics

    def score_target(self, target: str, record: "TestRecord | None" = None) -> float | None:
        """Accuracy on the test split of ``target`` (a cross-dataset or shifted task); with ``record`` also its
        calibration metrics, named ``<metric>@<target>``."""
        dataset = get_dataset(target, self.ctx.data_root)
        try:
            self.model.set_classes(dataset.classnames, self.templates_for(dataset.name, dataset.templates))
        except ClassesNotSupported:
            return None
        task = FewShotTask(dataset, list(dataset.classnames), [], [], dataset.split("test"), 0, 0)
        return self.score(task, task.test, "test", record=record, name=f"test@{target}", suffix=f"@{target}")

    def ensemble_sweep(self, alphas: tuple[float, ...], features_cache: dict) -> dict:
        """Metrics with the ensemble's alpha fixed to each value (no retraining: alpha acts at inference)."""
        parts = self.ensemble_parts
        originals = [p.config for p in parts]
        out = {}
        try:
            for alpha in alphas:
                for part in parts:
                    part.set_inference_option("alpha", float(alpha))
                for name, value in self.evaluate(features_cache).items():
                    if isinstance(value, float):
                        out[f"{name}@alpha={float(alpha):g}"] = value
        finally:
            for part, config in zip(parts, originals):
                part.config = config
        return out

    @torch.no_grad()
    def representation_drift(self, features_cache: dict) -> dict:
        """1 - mean cosine between the adapted and the frozen model's final features: class texts of the training
        classes, and test images (the features the logits use)."""
        tt, model = self.train_task, self.model
        model.set_classes(tt.classnames, self.templates_for(tt.dataset.name, tt.templates))
        key = ("test" if self.spec.setting != "base_to_new" else "test-base", len(tt.test))
        frozen, encoded = features_cache.get(key) or self.features_for(tt, tt.test, key[0])
        n = min(len(frozen), 512)
        out = model(Batch(features=frozen[:n].to(self.device),
                          encoded=encoded[:n].to(self.device) if encoded is not None else None))
        text = out.text if out.text.dim() == 2 else None
        drift = {"image_feature_drift": float(1 - (out.image * F.normalize(frozen[:n].to(out.image), dim=-1))
                                              .sum(-1).mean())}
        drift["text_feature_drift"] = float(1 - (text * out.zero_shot_text).sum(-1).mean()) \
            if text is not None else None
        return drift

    def save_state(self) -> str | None:
        if not (self.spec.save_state and self.ctx.state_dir):
            return None
        path = Path(self.ctx.state_dir) / f"{self.spec.key()}.safetensors"
        spec = self.spec
        save_adapted_state(self.model, path, backbone={"name": spec.backbone, "pretrained": spec.pretrained,
                                                       "quick_gelu": spec.quick_gelu},
                           metadata={"key": spec.key(), "spec": spec.to_dict()})
        return str(path)


class _PhaseClock:
    """Adds the seconds since the last call to ``phases[name]``."""

    def __init__(self, phases: dict) -> None:
        self.phases, self.last = phases, time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.phases[name] = self.phases.get(name, 0.0) + now - self.last
        self.last = now


@dataclass
class Prepared:
    """A run built and fitted, ready to train (alone, or with others: ``execute_together``) and then finish."""

    spec: RunSpec
    ctx: RunContext
    recipe: object
    train_cfg: object
    run: Run
    chosen: dict
    member: Member | None  # what training needs; None when nothing trains
    clock: "_PhaseClock"
    start: float


def prepare(spec: RunSpec, ctx: RunContext) -> Prepared:
    """Build the run (seeded as ``spec.seed``) and fit its parts: everything before the training loop."""
    start = time.perf_counter()
    if ctx.threads:
        torch.set_num_threads(ctx.threads)
    recipe = recipe_for(spec)
    train_cfg = recipe.train_config(spec.setting, spec.dataset).with_overrides(spec.train_overrides())
    seed_everything(spec.seed)
    clock = _PhaseClock(ctx.phase_seconds if ctx.phase_seconds is not None else {})
    run = Run.build(spec, ctx, recipe)
    clock("build")
    chosen, member = run.fit(train_cfg)
    return Prepared(spec, ctx, recipe, train_cfg, run, chosen, member, clock, start)


def finish(prep: Prepared, log: TrainLog | None) -> dict:
    """After training: tune on the few-shot validation set, evaluate, save the state; the result record."""
    spec, ctx, run, chosen, clock = prep.spec, prep.ctx, prep.run, prep.chosen, prep.clock
    clock("fit_and_train")
    for name, values in run.tune().items():
        chosen.setdefault(name, {}).update(values)
    clock("tune")
    features_cache: dict = {}
    record = TestRecord()
    metrics = run.evaluate(features_cache, record)
    if spec.ensemble_alphas and run.ensemble_parts:
        metrics.update(run.ensemble_sweep(spec.ensemble_alphas, features_cache))
    if ctx.evaluate_on == "test":
        metrics.update(run.representation_drift(features_cache))
    clock("evaluate")
    state_file = run.save_state()
    clock("save")
    model, recipe = run.model, prep.recipe
    return {
        "key": spec.key(),
        "config": spec.to_dict(),
        "config_hash": spec.config_hash(),
        "recipe": {"parts": [[n, o] for n, o in recipe.part_options(spec.setting, spec.dataset)],
                   "train": prep.train_cfg.to_dict(), "paper": recipe.paper},
        "metrics": metrics,
        "per_class_accuracy": record.per_class,
        "reliability": record.reliability,
        "chosen": chosen,
        "train": log.to_dict() if log else {"steps": 0, "trainable_parameters": 0},
        "trainable_parameters": model.num_trainable() + model.num_fitted(),
        "data": {"train": len(run.train_task.train), "val": len(run.train_task.val),
                 "test": len(run.train_task.test), "classes": run.train_task.num_classes,
                 "feature_cache": run.cached_mode},
        "state_file": state_file,
        "code_version": code_version(),
        "versions": library_versions(),
        "device": device_description(run.device),
        "wall_seconds": round(time.perf_counter() - prep.start, 3),
    }


def train_alone(prep: Prepared) -> TrainLog | None:
    """The one training loop of ``prep``'s run (None when nothing trains)."""
    m, spec = prep.member, prep.spec
    if m is None:
        return None
    return train(prep.run.model, m.batches, prep.train_cfg, m.total_steps, m.steps_per_epoch, prep.run.device,
                 progress=prep.ctx.progress, desc=f"{spec.method_label} {spec.dataset} K={spec.shots}",
                 shots=spec.shots)


def execute(spec: RunSpec, ctx: RunContext | None = None) -> dict:
    """Run ``spec`` and return its result record (config, metrics, training log, versions, wall time)."""
    prep = prepare(spec, ctx or RunContext())
    return finish(prep, train_alone(prep))


def execute_together(specs: list[RunSpec], ctx: RunContext) -> list[dict | Exception]:
    """Run ``specs`` (one frozen-feature method on one task: seeds, shots, learning rates), the training loops of
    runs that can share one (``training.together.group_key``) as one vectorised program; the others one by one. Returns each
    run's result record, or the exception that stopped it; the records are those of ``execute``, the training
    log adding ``trained_together``."""
    preps: list[Prepared | Exception] = []
    for spec in specs:
        try:
            preps.append(prepare(spec, ctx))
        except Exception as err:  # noqa: BLE001 - recorded as this run's failure by the caller
            preps.append(err)
    groups: dict[tuple, list[Prepared]] = {}
    for p in preps:
        if isinstance(p, Prepared) and p.member is not None and alone_reason(p.member) is None:
            groups.setdefault(group_key(p.member), []).append(p)
    logs: dict[int, TrainLog | Exception] = {}
    for group in groups.values():  # a group of one too: a run's numbers do not depend on its company
        trained = train_together([p.member for p in group], group[0].run.device)
        logs.update({id(p): log for p, log in zip(group, trained)})
    out: list[dict | Exception] = []
    for p in preps:
        if isinstance(p, Exception):
            out.append(p)
            continue
        try:
            log = logs[id(p)] if id(p) in logs else train_alone(p)
            out.append(log if isinstance(log, Exception) else finish(p, log))
        except Exception as err:  # noqa: BLE001
            out.append(err)
    return out
