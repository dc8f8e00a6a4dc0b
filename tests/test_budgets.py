"""Every run records its optimisation budget: steps, steps after the warm-up, examples seen."""

from __future__ import annotations

import pytest

from adaptlib.methods.train_config import TrainConfig
from adaptlib.runs.run import execute
from adaptlib.runs.spec import RunSpec
from adaptlib.training.loop import lr_at, warmup_steps


@pytest.mark.parametrize("per_epoch", [False, True])
@pytest.mark.parametrize("total, per_epoch_steps, warmup_epochs", [
    (100, 10, 1), (100, 10, 0), (7, 10, 1), (1, 1, 1), (45, 6, 2), (200, 96, 1)])
def test_warmup_steps_are_the_steps_at_the_warmup_rate(per_epoch, total, per_epoch_steps, warmup_epochs):
    cfg = TrainConfig(lr=0.5, warmup_lr=1e-5, warmup_epochs=warmup_epochs, schedule_per_epoch=per_epoch)
    at_warmup = sum(lr_at(s, total, per_epoch_steps, cfg) == cfg.warmup_lr for s in range(total))
    assert warmup_steps(total, per_epoch_steps, cfg) == at_warmup


def test_a_result_records_its_budget():
    spec = RunSpec("coop", dataset="colour", shots=2, seed=1, backbone="adaptlib-test", pretrained=None,
                   crop_scale=(1.0, 1.0), train={"max_steps": 5, "batch_size": 2})
    train = execute(spec)["train"]
    assert train["steps"] == 5 and 0 <= train["steps_after_warmup"] <= 5
    assert train["examples_seen"] == 5 * 2
