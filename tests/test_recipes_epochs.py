"""Every recipe trains exactly as long as before ImageNet's epochs moved from TrainConfig into the recipes' own
per-dataset overrides: epochs and optimisation steps at 1, 2, 4, 8 and 16 shots, pinned to the values the old
code (``TrainConfig.imagenet_epochs`` and its ``dataset.startswith("imagenet")`` branch) gave."""

from __future__ import annotations

import pytest

from adaptlib.methods.recipes import RECIPES, hybrid_recipe

SHOTS = (1, 2, 4, 8, 16)

# (recipe, setting, dataset): (epochs at SHOTS, total steps at SHOTS with 100 training images per shot), computed
# by the code before the change. CLIP-LoRA counts iterations, so its epochs never reach a run (only its steps do).
BEFORE = {
    ('zeroshot', 'few_shot', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('zeroshot', 'few_shot', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('zeroshot', 'few_shot', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('zeroshot', 'base_to_new', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('zeroshot', 'base_to_new', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('zeroshot', 'base_to_new', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('linear_probe', 'few_shot', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('linear_probe', 'few_shot', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('linear_probe', 'few_shot', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('linear_probe', 'base_to_new', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('linear_probe', 'base_to_new', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('linear_probe', 'base_to_new', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('coop', 'few_shot', 'imagenet'): ([50, 50, 50, 50, 50], [150, 300, 600, 1250, 2500]),
    ('coop', 'few_shot', 'eurosat'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('coop', 'few_shot', 'dtd'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('coop', 'base_to_new', 'imagenet'): ([50, 50, 50, 50, 50], [150, 300, 600, 1250, 2500]),
    ('coop', 'base_to_new', 'eurosat'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('coop', 'base_to_new', 'dtd'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('cocoop', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [1000, 2000, 4000, 8000, 16000]),
    ('cocoop', 'few_shot', 'eurosat'): ([10, 10, 10, 10, 10], [1000, 2000, 4000, 8000, 16000]),
    ('cocoop', 'few_shot', 'dtd'): ([10, 10, 10, 10, 10], [1000, 2000, 4000, 8000, 16000]),
    ('cocoop', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [1000, 2000, 4000, 8000, 16000]),
    ('cocoop', 'base_to_new', 'eurosat'): ([10, 10, 10, 10, 10], [1000, 2000, 4000, 8000, 16000]),
    ('cocoop', 'base_to_new', 'dtd'): ([10, 10, 10, 10, 10], [1000, 2000, 4000, 8000, 16000]),
    ('kgcoop', 'few_shot', 'imagenet'): ([100, 100, 100, 100, 100], [100, 100, 300, 600, 1200]),
    ('kgcoop', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [100, 100, 300, 600, 1200]),
    ('kgcoop', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [100, 100, 300, 600, 1200]),
    ('kgcoop', 'base_to_new', 'imagenet'): ([100, 100, 100, 100, 100], [100, 100, 300, 600, 1200]),
    ('kgcoop', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [100, 100, 300, 600, 1200]),
    ('kgcoop', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [100, 100, 300, 600, 1200]),
    ('clip_adapter', 'few_shot', 'imagenet'): ([50, 50, 50, 50, 50], [150, 300, 600, 1250, 2500]),
    ('clip_adapter', 'few_shot', 'eurosat'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('clip_adapter', 'few_shot', 'dtd'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('clip_adapter', 'base_to_new', 'imagenet'): ([50, 50, 50, 50, 50], [150, 300, 600, 1250, 2500]),
    ('clip_adapter', 'base_to_new', 'eurosat'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('clip_adapter', 'base_to_new', 'dtd'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('tip_adapter', 'few_shot', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('tip_adapter', 'few_shot', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('tip_adapter', 'few_shot', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('tip_adapter', 'base_to_new', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('tip_adapter', 'base_to_new', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('tip_adapter', 'base_to_new', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('tip_adapter_f', 'few_shot', 'imagenet'): ([20, 20, 20, 20, 20], [20, 20, 20, 60, 120]),
    ('tip_adapter_f', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [100, 100, 100, 300, 600]),
    ('tip_adapter_f', 'few_shot', 'dtd'): ([20, 20, 20, 20, 20], [20, 20, 20, 60, 120]),
    ('tip_adapter_f', 'base_to_new', 'imagenet'): ([20, 20, 20, 20, 20], [20, 20, 20, 60, 120]),
    ('tip_adapter_f', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [100, 100, 100, 300, 600]),
    ('tip_adapter_f', 'base_to_new', 'dtd'): ([20, 20, 20, 20, 20], [20, 20, 20, 60, 120]),
    ('layernorm', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('layernorm', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('layernorm', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_image', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('layernorm_image', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_image', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_image', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('layernorm_image', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_image', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_text', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('layernorm_text', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_text', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_text', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('layernorm_text', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('layernorm_text', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('bitfit', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('bitfit', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_image', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('bitfit_image', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_image', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_image', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('bitfit_image', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_image', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_text', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('bitfit_text', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_text', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_text', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('bitfit_text', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('bitfit_text', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('clipfit', 'few_shot', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    ('clipfit', 'few_shot', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('clipfit', 'few_shot', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('clipfit', 'base_to_new', 'imagenet'): ([10, 10, 10, 10, 10], [30, 60, 120, 250, 500]),
    # issue 14: CLIPFit's README trains 100 epochs on every dataset but Food-101 and ImageNet (10), in base-to-new
    # too (before: 10 epochs on every dataset in base-to-new); few-shot Food-101 went from 100 epochs to 10
    ('clipfit', 'base_to_new', 'eurosat'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('clipfit', 'base_to_new', 'dtd'): ([100, 100, 100, 100, 100], [300, 600, 1200, 2500, 5000]),
    ('vpt_shallow', 'few_shot', 'imagenet'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_shallow', 'few_shot', 'eurosat'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_shallow', 'few_shot', 'dtd'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_shallow', 'base_to_new', 'imagenet'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_shallow', 'base_to_new', 'eurosat'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_shallow', 'base_to_new', 'dtd'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_deep', 'few_shot', 'imagenet'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_deep', 'few_shot', 'eurosat'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_deep', 'few_shot', 'dtd'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_deep', 'base_to_new', 'imagenet'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_deep', 'base_to_new', 'eurosat'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('vpt_deep', 'base_to_new', 'dtd'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('text_adapter', 'few_shot', 'imagenet'): ([5, 5, 5, 5, 5], [30, 60, 125, 250, 500]),
    ('text_adapter', 'few_shot', 'eurosat'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('text_adapter', 'few_shot', 'dtd'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('text_adapter', 'base_to_new', 'imagenet'): ([5, 5, 5, 5, 5], [30, 60, 125, 250, 500]),
    ('text_adapter', 'base_to_new', 'eurosat'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('text_adapter', 'base_to_new', 'dtd'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('apex', 'few_shot', 'imagenet'): ([5, 5, 5, 5, 5], [30, 60, 125, 250, 500]),
    ('apex', 'few_shot', 'eurosat'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('apex', 'few_shot', 'dtd'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('apex', 'base_to_new', 'imagenet'): ([5, 5, 5, 5, 5], [30, 60, 125, 250, 500]),
    ('apex', 'base_to_new', 'eurosat'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('apex', 'base_to_new', 'dtd'): ([15, 15, 15, 15, 15], [90, 180, 375, 750, 1500]),
    ('clip_lora', 'few_shot', 'imagenet'): ([50, 50, 50, 50, 50], [500, 1000, 2000, 4000, 8000]),
    ('clip_lora', 'few_shot', 'eurosat'): ([50, 100, 100, 200, 200], [500, 1000, 2000, 4000, 8000]),
    ('clip_lora', 'few_shot', 'dtd'): ([50, 100, 100, 200, 200], [500, 1000, 2000, 4000, 8000]),
    ('clip_lora', 'base_to_new', 'imagenet'): ([50, 50, 50, 50, 50], [500, 1000, 2000, 4000, 8000]),
    ('clip_lora', 'base_to_new', 'eurosat'): ([50, 100, 100, 200, 200], [500, 1000, 2000, 4000, 8000]),
    ('clip_lora', 'base_to_new', 'dtd'): ([50, 100, 100, 200, 200], [500, 1000, 2000, 4000, 8000]),
    # MaPLe, PromptSRC and ProLIP, added later: their reference schedules
    ('maple', 'few_shot', 'imagenet'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('maple', 'few_shot', 'eurosat'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('maple', 'few_shot', 'dtd'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('maple', 'base_to_new', 'imagenet'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('maple', 'base_to_new', 'eurosat'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('maple', 'base_to_new', 'dtd'): ([5, 5, 5, 5, 5], [125, 250, 500, 1000, 2000]),
    ('promptsrc', 'few_shot', 'imagenet'): ([50, 50, 50, 50, 50], [1250, 2500, 5000, 10000, 20000]),
    ('promptsrc', 'few_shot', 'eurosat'): ([50, 50, 50, 50, 50], [1250, 2500, 5000, 10000, 20000]),
    ('promptsrc', 'few_shot', 'dtd'): ([50, 50, 50, 50, 50], [1250, 2500, 5000, 10000, 20000]),
    ('promptsrc', 'base_to_new', 'imagenet'): ([20, 20, 20, 20, 20], [500, 1000, 2000, 4000, 8000]),
    ('promptsrc', 'base_to_new', 'eurosat'): ([20, 20, 20, 20, 20], [500, 1000, 2000, 4000, 8000]),
    ('promptsrc', 'base_to_new', 'dtd'): ([20, 20, 20, 20, 20], [500, 1000, 2000, 4000, 8000]),
    ('prolip', 'few_shot', 'imagenet'): ([300, 300, 300, 300, 300], [300, 300, 300, 300, 300]),
    ('prolip', 'few_shot', 'eurosat'): ([300, 300, 300, 300, 300], [300, 300, 300, 300, 300]),
    ('prolip', 'few_shot', 'dtd'): ([300, 300, 300, 300, 300], [300, 300, 300, 300, 300]),
    ('prolip', 'base_to_new', 'imagenet'): ([300, 300, 300, 300, 300], [300, 300, 300, 300, 300]),
    ('prolip', 'base_to_new', 'eurosat'): ([300, 300, 300, 300, 300], [300, 300, 300, 300, 300]),
    ('prolip', 'base_to_new', 'dtd'): ([300, 300, 300, 300, 300], [300, 300, 300, 300, 300]),
    # ZS-LP, CLAP (300 epochs of batch 256, no partial batch), LP++ and GDA (no training loop), added later
    ('zs_lp', 'few_shot', 'imagenet'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('zs_lp', 'few_shot', 'eurosat'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('zs_lp', 'few_shot', 'dtd'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('zs_lp', 'base_to_new', 'imagenet'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('zs_lp', 'base_to_new', 'eurosat'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('zs_lp', 'base_to_new', 'dtd'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('clap', 'few_shot', 'imagenet'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('clap', 'few_shot', 'eurosat'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('clap', 'few_shot', 'dtd'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('clap', 'base_to_new', 'imagenet'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('clap', 'base_to_new', 'eurosat'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('clap', 'base_to_new', 'dtd'): ([300, 300, 300, 300, 300], [300, 300, 300, 900, 1800]),
    ('lp_plus_plus', 'few_shot', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('lp_plus_plus', 'few_shot', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('lp_plus_plus', 'few_shot', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('lp_plus_plus', 'base_to_new', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('lp_plus_plus', 'base_to_new', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('lp_plus_plus', 'base_to_new', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('gda', 'few_shot', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('gda', 'few_shot', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('gda', 'few_shot', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('gda', 'base_to_new', 'imagenet'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('gda', 'base_to_new', 'eurosat'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('gda', 'base_to_new', 'dtd'): ([1, 1, 1, 1, 1], [3, 6, 12, 25, 50]),
    ('hybrid', 'few_shot', 'imagenet'): ([50, 50, 50, 50, 50], [150, 300, 600, 1250, 2500]),
    ('hybrid', 'few_shot', 'eurosat'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('hybrid', 'few_shot', 'dtd'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('hybrid', 'base_to_new', 'imagenet'): ([50, 50, 50, 50, 50], [150, 300, 600, 1250, 2500]),
    ('hybrid', 'base_to_new', 'eurosat'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
    ('hybrid', 'base_to_new', 'dtd'): ([50, 100, 100, 200, 200], [150, 600, 1200, 5000, 10000]),
}


def recipes():
    return {**RECIPES, "hybrid": hybrid_recipe([("coop_prompt", {})], "hybrid")}


def test_every_recipe_is_pinned():
    assert {name for name, _, _ in BEFORE} == set(recipes())


@pytest.mark.parametrize("name, setting, dataset", sorted(BEFORE))
def test_epochs_and_steps_are_unchanged(name, setting, dataset):
    epochs, steps = BEFORE[name, setting, dataset]
    cfg = recipes()[name].train_config(setting, dataset)
    assert [cfg.total_steps(k, 100 * k) for k in SHOTS] == steps
    if not cfg.iterations_per_shot:
        assert [cfg.epochs_for(k) for k in SHOTS] == epochs


def test_imagenet_overrides_name_imagenet_only():
    """The evaluation-only variants are never trained; the "imagenet" key does not reach them."""
    coop = RECIPES["coop"]
    assert coop.train_config("few_shot", "imagenet").epochs_for(16) == 50
    assert coop.train_config("few_shot", "imagenet_v2").epochs_for(16) == 200


def test_a_run_override_still_applies_after_the_dataset_override():
    cfg = RECIPES["clipfit"].train_config("base_to_new", "imagenet").with_overrides({"max_steps": 3})
    assert cfg.epochs_for(16) == 10 and cfg.total_steps(16, 1600) == 3
