"""Analysis layer of the study: pure measures on features, parameters and results (no plotting here)."""

from .activations import image_layer_activations, text_layer_activations
from .claims import (Claim, ClaimResult, Evidence, Power, argmax_is_first_test, best_of_test, decide, depth_trend_test,
                     each_wins_test, evaluate_claims, evidence_for, holm, overall_verdict, paired_difference_test,
                     power_at, rank_correlation_test, share_test, simulate_pvalues, trend_test, verdict_record)
from .cka import layerwise_cka, linear_cka, representation_drift
from .class_structure import class_structure, cosine_silhouette, text_class_structure
from .difficulty import chance_corrected_error, difficulty_table, headroom, relative_transfer_difficulty
from .drift import (ParamName, count_layers, drift_by_layer, parameter_drift, parse_param_name, prompt_drift,
                    tensor_drift)
from .resampling import hierarchical_bootstrap
from .verdict import PairedDifference, paired_difference, verdict

__all__ = [
    "Claim",
    "ClaimResult",
    "Evidence",
    "PairedDifference",
    "ParamName",
    "Power",
    "argmax_is_first_test",
    "best_of_test",
    "chance_corrected_error",
    "class_structure",
    "cosine_silhouette",
    "count_layers",
    "decide",
    "depth_trend_test",
    "difficulty_table",
    "drift_by_layer",
    "each_wins_test",
    "evaluate_claims",
    "evidence_for",
    "headroom",
    "hierarchical_bootstrap",
    "holm",
    "image_layer_activations",
    "layerwise_cka",
    "linear_cka",
    "overall_verdict",
    "paired_difference",
    "paired_difference_test",
    "parameter_drift",
    "parse_param_name",
    "power_at",
    "prompt_drift",
    "rank_correlation_test",
    "relative_transfer_difficulty",
    "representation_drift",
    "share_test",
    "simulate_pvalues",
    "tensor_drift",
    "text_class_structure",
    "text_layer_activations",
    "trend_test",
    "verdict",
    "verdict_record",
]
