"""Runs trained together (``training.together``) give the numbers of the same runs trained one by one."""

from __future__ import annotations

import pytest
import torch

from adaptlib.methods.step import Batch
from adaptlib.runs.run import RunContext, execute, execute_together, finish, prepare, train_alone
from adaptlib.runs.spec import RunSpec
from adaptlib.training.together import alone_reason, group_key, train_together

FROZEN_FEATURE_METHODS = ["coop", "cocoop", "kgcoop", "clip_adapter", "tip_adapter_f", "text_adapter"]
# (seed, learning-rate factor) of the runs stacked in one program: one shot count (the batch shapes are equal)
CELLS = [(1, 1.0), (2, 0.5), (3, 2.0)]


def specs(method: str, steps: int = 6, shots: int = 2) -> list[RunSpec]:
    base_lr = {"clip_adapter": 0.5, "text_adapter": 1.0, "tip_adapter_f": 0.01}.get(method, 0.02)
    return [RunSpec(method, dataset="shape", shots=shots, seed=s, backbone="adaptlib-test", pretrained=None,
                    train={"max_steps": steps, "lr": base_lr * f, "batch_size": 4 if method != "cocoop" else 1})
            for s, f in CELLS]


@torch.no_grad()
def logits_on_test(prep) -> torch.Tensor:
    run = prep.run
    tt = run.train_task
    frozen = run.frozen(tt, tt.test, "test")
    run.model.eval()
    return run.model.predict(Batch(features=frozen))


@pytest.mark.parametrize("method", FROZEN_FEATURE_METHODS)
def test_runs_trained_together_match_the_runs_trained_one_by_one(method):
    ctx = RunContext(threads=1)
    alone = [prepare(s, ctx) for s in specs(method)]
    logs_alone = [train_alone(p) for p in alone]
    together = [prepare(s, ctx) for s in specs(method)]
    members = [p.member for p in together]
    assert all(alone_reason(m) is None for m in members) and len({group_key(m) for m in members}) == 1
    logs = train_together(members, together[0].run.device)
    for a, t, la, lt in zip(alone, together, logs_alone, logs):
        assert not isinstance(lt, Exception)
        assert lt.steps == la.steps and lt.examples_seen == la.examples_seen and lt.epochs == la.epochs
        assert lt.steps_after_warmup == la.steps_after_warmup
        assert lt.train_memory_bytes == la.train_memory_bytes
        assert lt.epoch_loss == pytest.approx(la.epoch_loss, abs=1e-5)
        for (n, pa), (_, pt) in zip(a.run.model.trainable_parameters(), t.run.model.trainable_parameters()):
            assert torch.allclose(pa, pt, atol=1e-5), n
        la_logits, lt_logits = logits_on_test(a), logits_on_test(t)
        # within 1e-5 on the scale of the similarities (logits / CLIP's logit scale): the logits themselves are
        # ~4 here, where float32's reassociation alone moves them by a few 1e-6 per operation (measured: 2.5e-5)
        scale = float(a.run.model.logit_scale)
        assert (la_logits - lt_logits).abs().max() / scale < 1e-5
        assert torch.equal(la_logits.argmax(-1), lt_logits.argmax(-1))


@pytest.mark.parametrize("method", FROZEN_FEATURE_METHODS)
def test_a_run_computes_the_same_bits_alone_and_in_a_program_with_others(method):
    """A run's numbers never depend on which runs shared its program (so a resumed sweep gives the same)."""
    ctx = RunContext(threads=1)
    alone = [prepare(s, ctx) for s in specs(method, steps=8)]
    for p in alone:
        train_together([p.member], p.run.device)
    together = [prepare(s, ctx) for s in specs(method, steps=8)]
    train_together([p.member for p in together], together[0].run.device)
    for a, t in zip(alone, together):
        for (n, pa), (_, pt) in zip(a.run.model.trainable_parameters(), t.run.model.trainable_parameters()):
            assert torch.equal(pa, pt), n
        assert torch.equal(logits_on_test(a), logits_on_test(t))


def test_execute_together_writes_the_records_of_execute():
    mixed = specs("clip_adapter", shots=1) + specs("clip_adapter", shots=2)  # two programs, one per shot count
    one = [execute(s, RunContext(threads=1)) for s in mixed]
    many = execute_together(mixed, RunContext(threads=1))
    for a, b in zip(one, many):
        assert a["key"] == b["key"] and a["config_hash"] == b["config_hash"]
        assert a["metrics"]["accuracy"] == b["metrics"]["accuracy"]
        assert b["train"]["trained_together"] == len(CELLS) and "trained_together" not in a["train"]
        assert set(a) == set(b)


def test_runs_that_cannot_share_a_program_say_why_and_train_one_by_one():
    ctx = RunContext(threads=1)
    steps = [prepare(s, ctx) for s in specs("clip_adapter", steps=6)[:1] + specs("clip_adapter", steps=4)[1:2]]
    assert group_key(steps[0].member) != group_key(steps[1].member)
    layernorm = [prepare(RunSpec("layernorm", dataset="shape", shots=1, seed=s, backbone="adaptlib-test",
                                 pretrained=None, train={"max_steps": 2}), ctx) for s in (1, 2)]
    assert all("encoder" in alone_reason(p.member) for p in layernorm)
    results = execute_together([p.spec for p in steps], ctx)
    assert all(isinstance(r, dict) and "trained_together" not in r["train"] for r in results)


def test_a_run_whose_loss_diverges_fails_alone():
    ctx = RunContext(threads=1)
    bad = specs("clip_adapter")
    bad[1] = RunSpec("clip_adapter", dataset="shape", shots=2, seed=2, backbone="adaptlib-test", pretrained=None,
                     train={"max_steps": 6, "lr": 1e30, "batch_size": 4})
    results = execute_together(bad, ctx)
    assert isinstance(results[1], FloatingPointError) and "lr=1e+30" in str(results[1])
    assert all(isinstance(r, dict) for i, r in enumerate(results) if i != 1)
    assert finish  # the finishing step is shared with execute
