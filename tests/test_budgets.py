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


@pytest.mark.parametrize("total, per_epoch_steps", [(100, 160), (60, 60), (40, 96), (2, 1), (9, 5), (200, 16)])
def test_a_step_cap_never_leaves_more_than_a_tenth_in_warmup(total, per_epoch_steps):
    """A whole warm-up epoch longer than the capped run (CoCoOp: batch 1, so an epoch is the whole train set) is
    cut to 10% of the run's steps: at least 90% of every step-capped run trains at the schedule's own rates."""
    cfg = TrainConfig(lr=0.5, warmup_lr=1e-5, warmup_epochs=1)
    warm = warmup_steps(total, per_epoch_steps, cfg)
    assert warm == min(per_epoch_steps, int(0.1 * total))
    assert total - warm >= 0.9 * total
    assert [lr_at(s, total, per_epoch_steps, cfg) == cfg.warmup_lr for s in range(total)].count(True) == warm


def test_max_warmup_fraction_is_checked():
    with pytest.raises(ValueError, match="max_warmup_fraction"):
        TrainConfig(max_warmup_fraction=1.5)
