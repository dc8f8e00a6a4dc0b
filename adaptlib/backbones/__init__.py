"""CLIP backbones: loading (open_clip), the project's model configs, and the embedded pretraining."""

from .load import Backbone, BackboneUnavailableError, embedded_checkpoint, load_backbone

__all__ = ["Backbone", "BackboneUnavailableError", "embedded_checkpoint", "load_backbone"]
