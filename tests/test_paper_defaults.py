"""The paper profile's defaults equal the reference code's (issue 14), each pinned to the value of the file it comes
from:

1. CLIPFit's epochs (minglllli/CLIPFit README.md): 10 on Food-101 and ImageNet, 100 elsewhere, few-shot and
   base-to-new alike.
2. The DTD prompt per method: KgCoOp (htyao89/KgCoOp KgCoOp/trainers/kgcoop.py) and CLIPFit (CLIPFit/trainers/
   ClipFit.py) "a photo of a {}, a type of texture."; CoOp and the others "{} texture." -- in the model and in every
   class set a run scores, so the regularisers' zero-shot targets use it too.
3. Tip-Adapter's per-dataset search ranges and initial alpha (gaopengcuhk/Tip-Adapter configs/<dataset>.yaml).
4. Tip-Adapter's 7-template ImageNet ensemble (datasets/imagenet.py).
5. Dassl's learning-rate schedule (KaiyangZhou/Dassl.pytorch dassl/optim/lr_scheduler.py): constant warm-up, then
   CosineAnnealingLR stepped once per epoch; per-iteration cosine for Tip-Adapter-F (main.py) and CLIP-LoRA
   (lora.py, eta_min 1e-6); the embedded and smoke profiles keep the per-step decay.
6. CLIP-LoRA's dropout (MaxZanella/CLIP-LoRA loralib/layers.py): an independent mask for each of q, k, v.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler

from adaptlib.backbones.text import class_text_features
from adaptlib.data.benchmarks import BENCHMARKS, FEW_SHOT_BENCHMARKS
from adaptlib.data.benchmarks.fixtures import build_fixture_root
from adaptlib.data.benchmarks.templates import TIP_ADAPTER_IMAGENET_TEMPLATES
from adaptlib.methods.model import AdaptedCLIP
from adaptlib.methods.parts.lora import LoRAAttention, LoRAConfig
from adaptlib.methods.parts.tip_cache import search_grid
from adaptlib.methods.recipes import RECIPES, hybrid_recipe
from adaptlib.methods.registry import build_part
from adaptlib.methods.train_config import TrainConfig
from adaptlib.runs.profile import load_profile, resolve_profile_path
from adaptlib.runs.run import Run, RunContext
from adaptlib.runs.spec import RunSpec, recipe_for
from adaptlib.training.features import FeatureCache
from adaptlib.training.loop import lr_at

SHOTS = (1, 2, 4, 8, 16)
SETTINGS = ("few_shot", "base_to_new")
TEXTURE = "a photo of a {}, a type of texture."


# ------------------------------------------------------------------------------------------- 1. CLIPFit's epochs
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("dataset", FEW_SHOT_BENCHMARKS)
def test_clipfit_epochs_follow_its_readme(dataset, setting):
    cfg = RECIPES["clipfit"].train_config(setting, dataset)
    expected = 10 if dataset in ("food101", "imagenet") else 100
    assert [cfg.epochs_for(k) for k in SHOTS] == [expected] * len(SHOTS)


def test_the_layernorm_and_bitfit_baselines_keep_their_epochs():
    for name in ("layernorm", "layernorm_image", "layernorm_text", "bitfit", "bitfit_image", "bitfit_text"):
        recipe = RECIPES[name]
        for setting in SETTINGS:
            assert recipe.train_config(setting, "imagenet").epochs_for(16) == 10
            assert recipe.train_config(setting, "food101").epochs_for(16) == 100
            assert recipe.train_config(setting, "dtd").epochs_for(16) == 100


# ------------------------------------------------------------------------------------------- 2. the DTD prompt
# Methods whose reference code prompts ImageNet with an ensemble: Tip-Adapter's seven templates (Tip-Adapter, and
# the datasets/imagenet.py of ProLIP, LP++ and GDA, which copy it), CLAP's eight (Tip's seven + CoOp's)
IMAGENET_ENSEMBLES = {**{name: TIP_ADAPTER_IMAGENET_TEMPLATES
                         for name in ("tip_adapter", "tip_adapter_f", "prolip", "lp_plus_plus", "gda")},
                      **{name: TIP_ADAPTER_IMAGENET_TEMPLATES + ("a photo of a {}.",) for name in ("zs_lp", "clap")}}


def test_dtd_prompt_per_method():
    default = BENCHMARKS["dtd"].templates
    assert tuple(default) == ("{} texture.",)
    for name, recipe in {**RECIPES, "hybrid": hybrid_recipe([("coop_prompt", {})])}.items():
        expected = [TEXTURE] if name in ("kgcoop", "clipfit") else ["{} texture."]
        assert recipe.templates_for("dtd", default) == expected, name
        for dataset in FEW_SHOT_BENCHMARKS:  # every other dataset keeps its CoOp template (ImageNet: test 4)
            if dataset != "dtd" and not (dataset == "imagenet" and name in IMAGENET_ENSEMBLES):
                assert recipe.templates_for(dataset, BENCHMARKS[dataset].templates) == \
                    list(BENCHMARKS[dataset].templates), (name, dataset)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return build_fixture_root(tmp_path_factory.mktemp("benchmarks"))


def built_run(method: str, dataset: str, setting: str, data_root) -> Run:
    spec = RunSpec(method, dataset, 1, 1, setting=setting, backbone="adaptlib-test", pretrained="random",
                   train={"max_steps": 1, "batch_size": 2})
    return Run.build(spec, RunContext(device="cpu", data_root=str(data_root), cache=FeatureCache(None)),
                     recipe_for(spec))


@pytest.mark.parametrize("method, template", [("kgcoop", TEXTURE), ("clipfit", TEXTURE), ("coop", "{} texture.")])
def test_a_run_prompts_dtd_with_its_methods_template_everywhere(method, template, data_root, monkeypatch):
    """The model's prompts, its zero-shot targets (KgCoOp's and CLIPFit's regulariser) and every class set the
    run scores (base and new classes) use the method's template."""
    run = built_run(method, "dtd", "base_to_new", data_root)
    model, tt = run.model, run.train_task
    assert model.templates == [template]
    with torch.no_grad(), model.frozen_view():
        target = class_text_features(model.clip, model.tokenizer, tt.classnames, [template])
    torch.testing.assert_close(model.zero_shot_text, target)
    seen = []
    original = AdaptedCLIP.set_classes

    def spy(self, classnames, templates=None):
        seen.append(list(templates) if templates is not None else None)
        return original(self, classnames, templates)

    monkeypatch.setattr(AdaptedCLIP, "set_classes", spy)
    cache: dict = {}
    run.evaluate(cache)
    run.representation_drift(cache)
    assert len(seen) == 4 and all(t == [template] for t in seen)  # base, new, few-shot val (base), drift


# ------------------------------------------------------------------------------------------- 3. Tip-Adapter's ranges
# gaopengcuhk/Tip-Adapter configs/<dataset>.yaml: search_scale [beta, alpha] and init_alpha (init_beta 1 and
# search_step [200, 20] in every file)
TIP_CONFIGS = {
    "imagenet": ((7, 3), 1.17), "caltech101": ((12, 5), 3), "oxford_pets": ((7, 3), 1.17),
    "stanford_cars": ((20, 10), 3), "oxford_flowers": ((50, 50), 10), "food101": ((10, 10), 1.17),
    "fgvc_aircraft": ((30, 30), 5), "sun397": ((12, 10), 1.17), "dtd": ((13, 13), 2), "eurosat": ((12, 10), 2),
    "ucf101": ((7, 3), 3),
}


def test_tip_configs_cover_the_benchmark():
    assert set(TIP_CONFIGS) == set(FEW_SHOT_BENCHMARKS)


@pytest.mark.parametrize("method", ["tip_adapter", "tip_adapter_f"])
@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("dataset", sorted(TIP_CONFIGS))
def test_tip_adapter_ranges_and_alpha_per_dataset(method, setting, dataset):
    options = dict(RECIPES[method].part_options(setting, dataset))["tip_cache"]
    cfg = build_part("tip_cache", options).config
    scale, alpha = TIP_CONFIGS[dataset]
    assert tuple(cfg.search_scale) == tuple(float(s) for s in scale)
    assert cfg.alpha == alpha and cfg.beta == 1.0 and tuple(cfg.search_step) == (200, 20)
    assert cfg.train_keys == (method == "tip_adapter_f")


def test_the_wide_ranges_reach_the_values_the_reference_searches():
    """With the old default [7, 3], Flowers, Aircraft and Cars could not reach these values."""
    flowers = dict(RECIPES["tip_adapter"].part_options("few_shot", "oxford_flowers"))["tip_cache"]
    beta, alpha = (search_grid(s, n) for s, n in zip(flowers["search_scale"], (200, 20)))
    assert beta.max() == pytest.approx(0.1 + 199 * 49.9 / 200) and alpha.max() == pytest.approx(0.1 + 19 * 49.9 / 20)


# ------------------------------------------------------------------------------------------- 4. ImageNet ensemble
def test_tip_adapter_prompts_imagenet_with_its_seven_templates(data_root):
    assert TIP_ADAPTER_IMAGENET_TEMPLATES == (
        "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "a {} in a video game.", "art of the {}.", "a photo of the small {}.")
    default = BENCHMARKS["imagenet"].templates
    for name, recipe in RECIPES.items():
        expected = list(IMAGENET_ENSEMBLES.get(name, ("a photo of a {}.",)))
        assert recipe.templates_for("imagenet", default) == expected, name
    assert RECIPES["tip_adapter"].templates_for("caltech101", ("a photo of a {}.",)) == ["a photo of a {}."]
    run = built_run("tip_adapter", "imagenet", "few_shot", data_root)
    assert run.model.templates == list(TIP_ADAPTER_IMAGENET_TEMPLATES)
    assert built_run("zeroshot", "imagenet", "few_shot", data_root).model.templates == ["a photo of a {}."]


# ------------------------------------------------------------------------------------------- 5. the schedule
def dassl_lr(epoch: int, epochs: int, cfg: TrainConfig, base: float) -> float:
    """Dassl's rate during ``epoch``: warm-up epochs at warmup_lr, then cosine(T_max=epochs) counted from the end of
    the warm-up (WARMUP_RECOUNT), stepped once per epoch."""
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr
    return base * (1 + math.cos(math.pi * (epoch - cfg.warmup_epochs) / epochs)) / 2


def dassl_cfg(**kw) -> TrainConfig:
    return TrainConfig(lr=0.002, warmup_epochs=1, warmup_lr=1e-5, schedule_per_epoch=True).with_overrides(kw)


@pytest.mark.parametrize("epochs", [10, 15])
@pytest.mark.parametrize("warmup", [0, 1, 2])
def test_lr_at_every_epoch_is_dassls(epochs, warmup):
    cfg = dassl_cfg(warmup_epochs=warmup)
    per_epoch = 3
    for step in range(epochs * per_epoch):
        expected = dassl_lr(step // per_epoch, epochs, cfg, cfg.lr)
        assert lr_at(step, epochs * per_epoch, per_epoch, cfg) == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("epochs, last", [(10, 0.0954915), (15, 0.0432273)])
def test_the_last_epoch_does_not_reach_zero(epochs, last):
    """With one warm-up epoch the last epoch runs at (1 + cos(pi (E - 2) / E)) / 2 of the base rate."""
    cfg = dassl_cfg()
    assert (1 + math.cos(math.pi * (epochs - 2) / epochs)) / 2 == pytest.approx(last, abs=1e-7)
    assert lr_at(epochs * 4 - 1, epochs * 4, 4, cfg) == pytest.approx(last * cfg.lr, rel=1e-6)
    assert lr_at(4, epochs * 4, 4, cfg) == cfg.lr  # the first epoch after the warm-up runs at the base rate


# Dassl.pytorch dassl/optim/lr_scheduler.py (commit c61a1b5), without the deprecated ``verbose`` argument
class _BaseWarmupScheduler(LRScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, last_epoch=-1):
        self.successor = successor
        self.warmup_epoch = warmup_epoch
        super().__init__(optimizer, last_epoch)

    def step(self, epoch=None):
        if self.last_epoch >= self.warmup_epoch:
            self.successor.step(epoch)
            self._last_lr = self.successor.get_last_lr()
        else:
            super().step(epoch)


class ConstantWarmupScheduler(_BaseWarmupScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, cons_lr, last_epoch=-1):
        self.cons_lr = cons_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        return [self.cons_lr for _ in self.base_lrs]


class LinearWarmupScheduler(_BaseWarmupScheduler):
    def __init__(self, optimizer, successor, warmup_epoch, min_lr, last_epoch=-1):
        self.min_lr = min_lr
        super().__init__(optimizer, successor, warmup_epoch, last_epoch)

    def get_lr(self):
        if self.last_epoch >= self.warmup_epoch:
            return self.successor.get_last_lr()
        if self.last_epoch == 0:
            return [self.min_lr for _ in self.base_lrs]
        return [lr * self.last_epoch / self.warmup_epoch for lr in self.base_lrs]


def dassl_schedule(cfg: TrainConfig, epochs: int, linear: bool = False) -> list[float]:
    """The rate of each epoch as Dassl's build_lr_scheduler + the trainers' update_lr() after an epoch give it."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = CosineAnnealingLR(optimizer, float(epochs))
    if cfg.warmup_epochs > 0:
        wrapper = LinearWarmupScheduler if linear else ConstantWarmupScheduler
        scheduler = wrapper(optimizer, scheduler, cfg.warmup_epochs, cfg.warmup_lr)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # (no gradients: nothing moves)
        scheduler.step()
    return rates


@pytest.mark.parametrize("epochs", [10, 15, 50])
@pytest.mark.parametrize("warmup", [0, 1])
def test_lr_at_equals_dassls_own_schedulers(epochs, warmup):
    cfg = dassl_cfg(warmup_epochs=warmup)
    per_epoch = 2
    ours = [lr_at(e * per_epoch + 1, epochs * per_epoch, per_epoch, cfg) for e in range(epochs)]
    assert ours == pytest.approx(dassl_schedule(cfg, epochs), rel=1e-9)


def test_apex_linear_warmup_of_one_epoch_is_a_constant_epoch():
    """APEX's config: WARMUP_TYPE linear, WARMUP_EPOCH 1, WARMUP_MIN_LR 1e-2 -- one epoch at 1e-2."""
    cfg = RECIPES["apex"].train
    assert (cfg.warmup_epochs, cfg.warmup_lr, cfg.schedule_per_epoch) == (1, 1e-2, True)
    ours = [lr_at(e, 15, 1, cfg) for e in range(15)]
    assert ours == pytest.approx(dassl_schedule(cfg, 15, linear=True), rel=1e-9)


@pytest.mark.parametrize("method, eta_min", [("tip_adapter_f", 0.0), ("clip_lora", 1e-6)])
def test_tip_adapter_f_and_clip_lora_decay_every_iteration(method, eta_min):
    cfg = RECIPES[method].train
    assert not cfg.schedule_per_epoch and cfg.warmup_epochs == 0 and cfg.eta_min == eta_min
    total = 37
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    scheduler = CosineAnnealingLR(optimizer, total, eta_min=eta_min)
    for step in range(total):
        assert lr_at(step, total, 5, cfg) == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        scheduler.step()


NO_LOOP = ("lp_plus_plus", "gda")  # fitted in closed form or by their own full-batch descent: no schedule


def test_every_dassl_based_recipe_steps_per_epoch():
    per_step = {"tip_adapter_f", "clip_lora", "zeroshot", "linear_probe", "tip_adapter", "prolip", *NO_LOOP}
    for name, recipe in RECIPES.items():
        assert recipe.train.schedule_per_epoch == (name not in per_step), name
    assert hybrid_recipe([("coop_prompt", {}), ("layernorm", {})]).train.schedule_per_epoch


def effective_configs(profile: str):
    for spec in load_profile(resolve_profile_path(profile)).expand():
        recipe = recipe_for(spec)
        yield spec, recipe.train_config(spec.setting, spec.dataset).with_overrides(spec.train_overrides())


@pytest.mark.parametrize("profile", ["embedded", "smoke"])
def test_the_step_capped_profiles_decay_per_step(profile):
    """Their runs are step-capped; they keep the per-step cosine their learning rates were calibrated with."""
    configs = list(effective_configs(profile))
    assert configs and all(not cfg.schedule_per_epoch for _, cfg in configs)


def test_the_paper_profile_follows_each_reference_schedule():
    methods = set()
    for spec, cfg in effective_configs("paper"):
        methods.add(spec.method)
        assert cfg.schedule_per_epoch == (spec.method not in ("tip_adapter_f", "clip_lora", "zeroshot", "linear_probe",
                                                              "tip_adapter", "prolip", *NO_LOOP)), spec.method_label
    assert {"coop", "cocoop", "kgcoop", "clip_adapter", "clipfit", "apex", "hybrid", "clip_lora"} <= methods


def old_lr_at(step, total_steps, steps_per_epoch, cfg, base_lr=None):
    """lr_at before the per-epoch schedule (per-step cosine to zero)."""
    base = cfg.lr if base_lr is None else base_lr
    warmup = min(cfg.warmup_epochs * steps_per_epoch, max(total_steps - 1, 0))
    if step < warmup:
        return cfg.warmup_lr
    if cfg.scheduler == "constant":
        return base
    progress = (step - warmup) / max(1, total_steps - warmup)
    return 0.5 * base * (1.0 + math.cos(math.pi * progress))


@pytest.mark.parametrize("total, per_epoch, warmup", [(40, 3, 1), (200, 7, 1), (200, 20, 1), (25, 4, 0)])
def test_the_per_step_schedule_is_unchanged_where_the_warmup_fits_in_a_tenth(total, per_epoch, warmup):
    cfg = TrainConfig(lr=0.05, warmup_epochs=warmup)
    for step in range(total):
        assert lr_at(step, total, per_epoch, cfg, 0.5) == old_lr_at(step, total, per_epoch, cfg, 0.5)


# ------------------------------------------------------------------------------------------- 6. LoRA's dropout
def lora_attention(dropout: float, targets=("q", "k", "v"), width: int = 16) -> LoRAAttention:
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(width, 2, batch_first=True)
    lora = LoRAAttention(attn, LoRAConfig(rank=2, alpha=1.0, dropout=dropout, targets=targets))
    for t in lora.lora_B:
        lora.lora_B[t].data = torch.randn_like(lora.lora_B[t])
    return lora


class Recorder(nn.Module):
    """Wraps the dropout and records each mask it draws."""

    def __init__(self, dropout: nn.Dropout):
        super().__init__()
        self.dropout, self.masks = dropout, []

    def forward(self, x):
        out = self.dropout(x)
        self.masks.append(out != 0)
        return out


def test_q_k_and_v_draw_independent_dropout_masks():
    lora = lora_attention(0.5).train()
    lora.dropout = Recorder(lora.dropout)
    x = torch.randn(2, 5, 16)
    lora(x, x, x)
    masks = lora.dropout.masks
    assert len(masks) == 3
    assert not torch.equal(masks[0], masks[1]) and not torch.equal(masks[1], masks[2])
    assert not torch.equal(masks[0], masks[2])


class Numbered(nn.Module):
    """A stand-in for dropout that multiplies its n-th call's input by n, to read the order of the calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * self.calls


@pytest.mark.parametrize("targets", [("q", "k", "v"), ("v", "q")])
def test_masks_are_drawn_in_q_k_v_order(targets):
    """As CLIP-LoRA calls q_proj, k_proj and v_proj in turn: the first draw is q's, whatever the targets' order."""
    numbered = lora_attention(0.0, targets).train()
    numbered.dropout = Numbered()
    reference = lora_attention(0.0, targets).train()
    for n, t in enumerate(t for t in ("q", "k", "v") if t in targets):
        reference.lora_A[t].data = reference.lora_A[t].data * (n + 1)
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(numbered(x, x, x)[0], reference(x, x, x)[0])


def test_without_dropout_the_outputs_are_unchanged():
    """Dropout 0 draws nothing and computes exactly what the shared-input code did."""
    lora = lora_attention(0.0).train()
    x = torch.randn(2, 5, 16)
    state = torch.get_rng_state()
    out = lora(x, x, x)[0]
    assert torch.equal(torch.get_rng_state(), state)
    a = lora.attn
    q, k, v = torch.nn.functional.linear(x, a.in_proj_weight, a.in_proj_bias).chunk(3, dim=-1)
    q, k, v = ((p + (x @ lora.lora_A[t].t()) @ lora.lora_B[t].t() * lora.scaling) for p, t in zip((q, k, v), "qkv"))
    split = (lambda t: t.view(2, 5, 2, 8).transpose(1, 2))
    expected = torch.nn.functional.scaled_dot_product_attention(split(q), split(k), split(v))
    expected = a.out_proj(expected.transpose(1, 2).reshape(2, 5, 16))
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
