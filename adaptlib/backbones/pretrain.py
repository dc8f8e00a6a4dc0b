"""Pretrain the embedded backbone: a tiny open_clip CLIP trained with the symmetric contrastive loss on the
embedded image-caption corpus, deterministically for a seed, on the CPU in minutes.

Writes ``model.safetensors`` and a model card (``model_card.json`` + ``model_card.md`` + ``loss_curve.png``)
with the config, seed, steps, loss curve and zero-shot accuracy on every downstream task.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..utils.atomic import atomic_save, atomic_write_json, atomic_write_text
from ..utils.seeding import seed_everything
from .images import arrays_to_tensor
from .load import embedded_checkpoint, load_backbone
from .text import encode_token_ids


@dataclass(frozen=True)
class PretrainConfig:
    """Pretraining recipe. The defaults take about six minutes on a 2-core CPU.

    The first ``clean_steps`` form a curriculum: clean scenes (solid, centred, on black) captioned with their shape
    only. Without it the tiny ViT learns colour at once and never leaves the plateau where every shape caption has
    the same text feature (measured: shape zero-shot stays at chance).
    """

    model: str = "adaptlib-tiny"
    seed: int = 0
    corpus_size: int = 40_000
    steps: int = 2_400
    clean_steps: int = 400
    clean_fraction: float = 0.15
    batch_size: int = 128
    lr: float = 4e-4
    weight_decay: float = 0.1
    warmup_steps: int = 50
    threads: int = 2
    corpus_nuisance: float = 0.35
    colour_group: int = 8


def _cosine_lr(step: int, cfg: PretrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * cfg.lr * (1 + math.cos(math.pi * t))


def contrastive_loss(model, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP, where every pair with the same caption counts as a positive.

    Templated captions repeat within a batch ("a circle." several times); plain InfoNCE would treat the copies
    as negatives of each other and push identical texts apart from their matching images.
    """
    img = F.normalize(model.encode_image(images), dim=-1)
    txt = F.normalize(encode_token_ids(model, tokens, chunk=None), dim=-1)
    logits = model.logit_scale.exp() * img @ txt.T
    same = (tokens[:, None, :] == tokens[None, :, :]).all(-1).float()
    target = same / same.sum(1, keepdim=True)
    loss_i = torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
    loss_t = torch.sum(-target * F.log_softmax(logits.T, dim=1), dim=1).mean()
    return (loss_i + loss_t) / 2


def _batch_indices(cfg: PretrainConfig, n: int, corpus_cfg):
    """Endless batches: random clean pairs during the curriculum, then whole colour groups in random order."""
    gen = torch.Generator().manual_seed(cfg.seed)
    n_clean = int(corpus_cfg.clean_fraction * n)
    for _ in range(cfg.clean_steps):
        yield torch.randint(0, max(n_clean, 1), (cfg.batch_size,), generator=gen)
    group = corpus_cfg.group
    while True:
        order = torch.randperm(n // group, generator=gen)
        order = (order[:, None] * group + torch.arange(group)[None]).flatten()
        for start in range(0, len(order) - cfg.batch_size + 1, cfg.batch_size):
            yield order[start:start + cfg.batch_size]


def zero_shot_report(backbone, tasks: list[str] | None = None) -> list[dict]:
    """Zero-shot test accuracy of ``backbone`` on each embedded task (the model card's table)."""
    from ..data.embedded.tasks import TASKS, generate_split
    from .images import encode_image_arrays
    from .text import zero_shot_classifier

    rows = []
    for name in tasks or list(TASKS):
        spec = TASKS[name]
        images, labels = generate_split(spec, "test")
        weights = zero_shot_classifier(backbone, spec.classes, spec.templates)
        feats = encode_image_arrays(backbone, images)
        acc = float((feats @ weights.T).argmax(1).numpy().__eq__(labels).mean())
        rows.append({"task": name, "classes": len(spec.classes), "chance": 1.0 / len(spec.classes),
                     "zero_shot_accuracy": acc, "description": spec.description})
    return rows


def pretrain(cfg: PretrainConfig, out_path: Path | None = None, progress: bool = True) -> dict:
    """Train, evaluate and save the embedded backbone; returns the model card."""
    from tqdm.auto import tqdm

    from ..data.embedded.corpus import CorpusConfig, build_corpus

    torch.set_num_threads(cfg.threads)
    out_path = Path(out_path or embedded_checkpoint(cfg.model, cfg.seed))
    t_start = time.time()
    seed_everything(cfg.seed)
    backbone = load_backbone(cfg.model, None, seed=cfg.seed)
    model = backbone.model.train()

    corpus_cfg = CorpusConfig(size=cfg.corpus_size, image_size=backbone.image_size, seed=cfg.seed,
                              nuisance=cfg.corpus_nuisance, group=cfg.colour_group,
                              clean_fraction=cfg.clean_fraction)
    images, captions, shapes = build_corpus(corpus_cfg, progress=progress)
    tokens = backbone.tokenizer(captions)
    shape_captions = [f"a {s}." if i % 2 else f"a photo of a {s}." for i, s in enumerate(shapes)]
    shape_tokens = backbone.tokenizer(shape_captions)
    t_corpus = time.time() - t_start

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    batches = _batch_indices(cfg, len(images), corpus_cfg)
    losses: list[float] = []
    bar = tqdm(range(cfg.steps), desc=f"pretrain {cfg.model}", disable=not progress, mininterval=2)
    for step in bar:
        idx = next(batches)
        for group in opt.param_groups:
            group["lr"] = _cosine_lr(step, cfg)
        batch_tokens = (shape_tokens if step < cfg.clean_steps else tokens)[idx]
        loss = contrastive_loss(model, arrays_to_tensor(images[idx.numpy()], backbone), batch_tokens)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"pretraining loss became {loss.item()} at step {step}; lower the lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        losses.append(loss.item())
        if step % 20 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    t_train = time.time() - t_start - t_corpus

    model.eval()
    table = zero_shot_report(backbone)
    t_total = time.time() - t_start
    card = {
        "model": cfg.model,
        "config": asdict(cfg),
        "model_config": json.loads((Path(__file__).parent / "configs" / f"{cfg.model}.json").read_text()),
        "seed": cfg.seed,
        "steps": cfg.steps,
        "pairs_seen": cfg.steps * cfg.batch_size,
        "loss_curve": [float(np.mean(losses[i:i + 20])) for i in range(0, len(losses), 20)],
        "loss_curve_every": 20,
        "final_loss": float(np.mean(losses[-50:])),
        "logit_scale": float(model.logit_scale.detach().exp()),
        "zero_shot": table,
        "seconds": {"corpus": round(t_corpus, 1), "train": round(t_train, 1), "total": round(t_total, 1)},
        "torch_threads": cfg.threads,
        "versions": _versions(),
    }
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    # one metadata key: safetensors writes several in hash-map order, so the file's bytes would vary between runs
    meta = {"adaptlib": json.dumps({"model": cfg.model, "seed": cfg.seed}, sort_keys=True)}
    atomic_save(out_path, lambda tmp: save_file(state, str(tmp), metadata=meta))
    card["sha256"] = weights_sha256(out_path)
    write_model_card(card, out_path.parent)
    return card


def weights_sha256(path: Path) -> str:
    """The checkpoint's identity: results, calibrations and figures name the weights they came from by it."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def released_sha256(folder: Path) -> str | None:
    """The sha256 its model card records for the checkpoint in ``folder`` (None: no card, or a card without one)."""
    card = Path(folder) / "model_card.json"
    return json.loads(card.read_text()).get("sha256") if card.is_file() else None


def _versions() -> dict:
    from ..utils.versions import library_versions

    return library_versions()


def write_model_card(card: dict, folder: Path) -> None:
    atomic_write_json(folder / "model_card.json", card)
    lines = [
        f"# Model card: {card['model']} (embedded backbone, seed {card['seed']})",
        "",
        f"Pretrained by `adaptlib pretrain` for {card['steps']} steps of batch {card['config']['batch_size']} "
        f"({card['pairs_seen']:,} caption pairs) on the embedded corpus of {card['config']['corpus_size']:,} pairs, "
        f"with the symmetric contrastive loss. Final loss {card['final_loss']:.3f}, logit scale "
        f"{card['logit_scale']:.1f}. Wall time {card['seconds']['total']:.0f} s "
        f"(corpus {card['seconds']['corpus']:.0f} s, training {card['seconds']['train']:.0f} s) on "
        f"{card['torch_threads']} CPU threads.",
        "",
        f"Weights: `model.safetensors`, sha256 `{card.get('sha256', 'not recorded')}`.",
        "",
        "| task | classes | chance | zero-shot accuracy | what it is |",
        "|---|---|---|---|---|",
    ]
    for row in card["zero_shot"]:
        lines.append(f"| {row['task']} | {row['classes']} | {100 * row['chance']:.1f} | "
                     f"{100 * row['zero_shot_accuracy']:.1f} | {row['description']} |")
    lines += ["", "Config:", "```json", json.dumps(card["config"], indent=2), "```", "",
              "![loss curve](loss_curve.png)", ""]
    atomic_write_text(folder / "model_card.md", "\n".join(lines))
    _plot_loss(card, folder / "loss_curve.png")


def _plot_loss(card: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..utils.atomic import atomic_path

    fig, ax = plt.subplots(figsize=(4.5, 3))
    every = card["loss_curve_every"]
    ax.plot(np.arange(len(card["loss_curve"])) * every, card["loss_curve"])
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss")
    ax.set_title(f"{card['model']} seed {card['seed']}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, metadata={"Software": None})
    plt.close(fig)
