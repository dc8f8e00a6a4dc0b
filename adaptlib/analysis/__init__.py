"""Analysis layer of the study: pure measures on features, parameters and results (no plotting here)."""

from .activations import image_layer_activations, text_layer_activations
from .cka import layerwise_cka, linear_cka, representation_drift
from .class_structure import class_structure, cosine_silhouette, text_class_structure
from .difficulty import chance_corrected_error, difficulty_table, headroom, relative_transfer_difficulty
from .drift import (ParamName, count_layers, drift_by_layer, parameter_drift, parse_param_name, prompt_drift,
                    tensor_drift)
from .verdict import PairedDifference, paired_difference, verdict

__all__ = [
    "PairedDifference",
    "ParamName",
    "chance_corrected_error",
    "class_structure",
    "cosine_silhouette",
    "count_layers",
    "difficulty_table",
    "drift_by_layer",
    "headroom",
    "image_layer_activations",
    "layerwise_cka",
    "linear_cka",
    "paired_difference",
    "parameter_drift",
    "parse_param_name",
    "prompt_drift",
    "relative_transfer_difficulty",
    "representation_drift",
    "tensor_drift",
    "text_class_structure",
    "text_layer_activations",
    "verdict",
]
