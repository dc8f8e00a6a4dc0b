"""Model selection, a protocol axis: where a run's hyper-parameters that gradients do not learn come from.

- ``few_shot_val`` (the default): chosen on the few-shot validation set, min(K, 4) images per class, never on test:
  the learning rates a profile calibrates per shot count (``train_by_shots``), a linear probe's C, Tip-Adapter's
  alpha and beta, GDA's alpha.
- ``fixed``: no validation data at all, as a few-shot user without one runs it (Silva-Rodriguez et al., CVPR 2024):
  the recipe's published learning rate (a profile's calibrated ``train_by_shots`` are not applied; its step caps
  are) and each part's published fixed setting or validation-free rule (``Part.fixed_choice``).
- ``oracle_test``: the parts' choices made on the test split. Only to reproduce a paper that did so (Tip-Adapter's
  ImageNet search, GDA's); tables and figures label it "oracle". Learning rates stay as the profile sets them.
"""

from __future__ import annotations

FEW_SHOT_VAL = "few_shot_val"
FIXED = "fixed"
ORACLE_TEST = "oracle_test"
SELECTIONS = (FEW_SHOT_VAL, FIXED, ORACLE_TEST)

# how tables and figures name a method under each selection
SELECTION_TAGS = {FEW_SHOT_VAL: "", FIXED: " [fixed]", ORACLE_TEST: " [oracle: test]"}


def check_selection(selection: str) -> str:
    """``selection`` if it is one of SELECTIONS, else a clear error naming the valid ones."""
    if selection not in SELECTIONS:
        from ..utils.names import unknown_name_error

        raise unknown_name_error("model selection", selection, SELECTIONS)
    return selection


def selection_label(method_label: str, selection: str) -> str:
    """A method's name in tables: ``coop``, ``coop [fixed]``, ``tip_adapter [oracle: test]``."""
    return method_label + SELECTION_TAGS[check_selection(selection)]
