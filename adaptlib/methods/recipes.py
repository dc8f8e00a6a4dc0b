"""Methods as named recipes: a list of parts with options, and the training settings of the original paper.

A hybrid is just another list of parts (``hybrid_recipe``), from the command line or a config file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..utils.names import unknown_name_error
from .registry import PARTS
from .train_config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    name: str
    parts: tuple[tuple[str, dict[str, Any]], ...]
    train: TrainConfig = field(default_factory=TrainConfig)
    paper: str = ""
    description: str = ""
    # setting- and dataset-specific part options, e.g. CLIPFit's regulariser weight in few-shot vs base-to-new
    setting_options: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    dataset_options: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    # setting- and dataset-specific training values, e.g. CLIPFit trains 10 epochs in base-to-new, CoOp 50 epochs
    # on ImageNet; a dataset's values are applied after the setting's. Dataset keys name a dataset exactly (the
    # part before any "@"): "imagenet" is ImageNet only, not its evaluation-only variants.
    setting_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    dataset_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    crop_scale: tuple[float, float] = (0.08, 1.0)  # the method's training augmentation (Tip-Adapter: 0.5-1)

    def part_options(self, setting: str = "few_shot", dataset: str = "") -> list[tuple[str, dict[str, Any]]]:
        """Each part's options after applying the setting's and the dataset's specific values."""
        out = []
        for name, options in self.parts:
            merged = dict(options)
            merged.update(self.setting_options.get(setting, {}).get(name, {}))
            for ds, per_part in self.dataset_options.items():
                if dataset.split("@")[0] == ds:
                    merged.update(per_part.get(name, {}))
            out.append((name, merged))
        return out

    def train_config(self, setting: str = "few_shot", dataset: str = "") -> TrainConfig:
        """The training settings after the setting's and the dataset's specific values."""
        values = dict(self.setting_train.get(setting, {}))
        values.update(self.dataset_train.get(dataset.split("@")[0], {}))
        return self.train.with_overrides(values) if values else self.train


# Each shared schedule comes with its ImageNet epochs where they differ from its per-shot table (a recipe's
# dataset_train); where a paper trains ImageNet as long as the other datasets there is no ImageNet entry.
COOP_EPOCHS = {1: 50, 2: 100, 4: 100, 8: 200, 16: 200}
DASSL_SGD = TrainConfig(optimizer="sgd", lr=0.002, weight_decay=5e-4, momentum=0.9, batch_size=32,
                        epochs=COOP_EPOCHS, warmup_epochs=1, warmup_lr=1e-5)
DASSL_DATASETS = {"imagenet": {"epochs": 50}}  # CoOp: 50 epochs on ImageNet at every shot count
NO_TRAINING = TrainConfig(epochs={1: 0})
CLIPFIT_SGD = TrainConfig(optimizer="sgd", lr=0.002, weight_decay=5e-4, batch_size=32, epochs={1: 100},
                          warmup_epochs=1, warmup_lr=1e-5)
CLIPFIT_DATASETS = {"imagenet": {"epochs": 10}}
# APEX patches Dassl with Adadelta; its linear warm-up of one epoch starts at 1e-2, i.e. one epoch at 1e-2
APEX_ADADELTA = TrainConfig(optimizer="adadelta", lr=0.15, weight_decay=1e-3, batch_size=16, epochs={1: 15},
                            warmup_epochs=1, warmup_lr=1e-2)
APEX_DATASETS = {"imagenet": {"epochs": 5}}
# MaPLe's VPT baseline (configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml): 5 epochs on ImageNet too
VPT_SGD = TrainConfig(optimizer="sgd", lr=0.0025, batch_size=4, epochs={1: 5}, warmup_epochs=1, warmup_lr=1e-5)
# Tip-Adapter's per-dataset search ranges and initial alpha (configs/*.yaml; ImageNet's are the default)
TIP_DATASET_OPTIONS = {
    "dtd": {"tip_cache": {"alpha": 2.0, "search_scale": (13.0, 13.0)}},
    "eurosat": {"tip_cache": {"alpha": 2.0, "search_scale": (12.0, 10.0)}},
}

RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("zeroshot", (), NO_TRAINING, "Radford et al., ICML 2021",
           "class names x the dataset's templates, features averaged; logits = logit scale x cosine"),
    Recipe("linear_probe", (("linear_head", {}),), NO_TRAINING, "Radford et al., ICML 2021",
           "logistic regression on frozen features, C searched on the few-shot val"),
    Recipe("coop", (("coop_prompt", {"n_ctx": 16}),), DASSL_SGD, "Zhou et al., IJCV 2022",
           "16 learnable context vectors, class token at the end", dataset_train=DASSL_DATASETS),
    Recipe("cocoop", (("cocoop_prompt", {}),),
           TrainConfig(optimizer="sgd", lr=0.002, batch_size=1, epochs={1: 10}, warmup_epochs=1, warmup_lr=1e-5),
           "Zhou et al., CVPR 2022",
           "4 context vectors from 'a photo of a' plus a meta-net bias from each image"),
    Recipe("kgcoop", (("coop_prompt", {"n_ctx": 4, "init": "a photo of a"}), ("text_regulariser", {"weight": 8.0})),
           TrainConfig(optimizer="sgd", lr=0.002, batch_size=128, epochs={1: 100}, warmup_epochs=1,
                       warmup_lr=1e-5), "Yao et al., CVPR 2023",
           "CoOp (M=4, 'a photo of a') plus the text-feature regulariser, lambda 8 (vit_b16_ep100_ctxv1)"),
    Recipe("clip_adapter", (("clip_adapter", {"ratio": 0.2}),), DASSL_SGD, "Gao et al., IJCV 2023",
           "residual bottleneck adapter on image features, ratio 0.2", dataset_train=DASSL_DATASETS),
    Recipe("tip_adapter", (("tip_cache", {"train_keys": False}),), NO_TRAINING, "Zhang et al., ECCV 2022",
           "training-free cache of few-shot features; alpha, beta searched on val",
           dataset_options=TIP_DATASET_OPTIONS, crop_scale=(0.5, 1.0)),
    Recipe("tip_adapter_f", (("tip_cache", {"train_keys": True}),),
           TrainConfig(optimizer="adamw", lr=1e-3, eps=1e-4, weight_decay=0.01, batch_size=256, epochs={1: 20},
                       warmup_epochs=0), "Zhang et al., ECCV 2022",
           "cache keys fine-tuned; alpha, beta searched on val after training (not the best epoch on test)",
           dataset_options=TIP_DATASET_OPTIONS, dataset_train={"eurosat": {"epochs": {1: 100}}},
           crop_scale=(0.5, 1.0)),
    Recipe("layernorm", (("layernorm", {"tower": "both"}),), CLIPFIT_SGD, "Wang (NTU), 2023",
           "every LayerNorm of both towers", dataset_train=CLIPFIT_DATASETS),
    Recipe("layernorm_image", (("layernorm", {"tower": "image"}),), CLIPFIT_SGD, "Wang (NTU), 2023",
           "every LayerNorm of the image tower", dataset_train=CLIPFIT_DATASETS),
    Recipe("layernorm_text", (("layernorm", {"tower": "text"}),), CLIPFIT_SGD, "Wang (NTU), 2023",
           "every LayerNorm of the text tower", dataset_train=CLIPFIT_DATASETS),
    Recipe("bitfit", (("bitfit", {"tower": "both"}),), CLIPFIT_SGD, "Ben Zaken et al., ACL 2022",
           "every linear and attention bias of both towers", dataset_train=CLIPFIT_DATASETS),
    Recipe("bitfit_image", (("bitfit", {"tower": "image"}),), CLIPFIT_SGD, "Ben Zaken et al., ACL 2022",
           "biases of the image tower", dataset_train=CLIPFIT_DATASETS),
    Recipe("bitfit_text", (("bitfit", {"tower": "text"}),), CLIPFIT_SGD, "Ben Zaken et al., ACL 2022",
           "biases of the text tower", dataset_train=CLIPFIT_DATASETS),
    Recipe("clipfit", (("clipfit_params", {}), ("text_regulariser", {"weight": 2.0})), CLIPFIT_SGD,
           "Li et al., EMNLP 2024", "text FFN c_proj biases + image LayerNorms + text regulariser",
           setting_options={"base_to_new": {"text_regulariser": {"weight": 8.0}}},
           setting_train={"base_to_new": {"epochs": {1: 10}}}, dataset_train=CLIPFIT_DATASETS,
           dataset_options={"dtd": {"text_regulariser": {"weight": 8.0}},
                            "sun397": {"text_regulariser": {"weight": 8.0}}}),
    Recipe("vpt_shallow", (("visual_prompt", {"n_tokens": 8, "deep": False}),), VPT_SGD,
           "Jia et al., ECCV 2022", "8 visual tokens before the first block (MaPLe's VPT settings)"),
    Recipe("vpt_deep", (("visual_prompt", {"n_tokens": 8, "deep": True}),), VPT_SGD, "Jia et al., ECCV 2022",
           "8 visual tokens replaced before every block (MaPLe's VPT settings)"),
    Recipe("text_adapter", (("text_adapter", {}),), APEX_ADADELTA, "Yang et al., EMNLP 2024",
           "linear text-feature adapter, identity init", dataset_train=APEX_DATASETS),
    Recipe("apex", (("coop_prompt", {"init": "a photo of a", "learnable_tokens": 2}),
                    ("visual_prompt", {"n_tokens": 2, "deep": True}),
                    ("text_adapter", {}), ("adaptive_ensemble", {})),
           APEX_ADADELTA, "Yang et al., EMNLP 2024",
           "deep visual prompts + shallow text prompt + text adapter + difficulty-adaptive ensemble",
           dataset_train=APEX_DATASETS),
    Recipe("clip_lora", (("lora", {"rank": 2, "alpha": 1.0, "dropout": 0.25}),),
           TrainConfig(optimizer="adamw", lr=2e-4, weight_decay=1e-2, betas=(0.9, 0.999), batch_size=32,
                       iterations_per_shot=500, warmup_epochs=0), "Zanella & Ben Ayed, CVPRW 2024",
           "LoRA r=2 on q, k, v of both encoders"),
]}

HYBRID_TRAIN = DASSL_SGD
HYBRID_DATASETS = DASSL_DATASETS


def hybrid_recipe(parts: list[tuple[str, dict[str, Any]]], name: str | None = None,
                  train: TrainConfig | None = None) -> Recipe:
    """A method made of any existing parts, trained with the Dassl/CoOp defaults (ImageNet: 50 epochs) unless
    told otherwise."""
    for part, _ in parts:
        if part not in PARTS:
            raise unknown_name_error("part", part, PARTS)
    label = name or "hybrid:" + "+".join(p for p, _ in parts)
    return Recipe(label, tuple((p, dict(o)) for p, o in parts), train or HYBRID_TRAIN, "", "hybrid of parts",
                  dataset_train=HYBRID_DATASETS)


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise unknown_name_error("method", name, RECIPES)
    return RECIPES[name]
