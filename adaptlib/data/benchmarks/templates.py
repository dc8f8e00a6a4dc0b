"""Prompt templates: CoOp's one template per dataset (the default) and CLIP's 80-template ImageNet ensemble.

``COOP_TEMPLATES`` is CoOp's ``CUSTOM_TEMPLATES`` (trainers/zsclip.py), keyed by CoOp's dataset name; every
benchmark's ``templates[0]`` is its entry, so zero-shot and prompt-initialised methods start from the prompts the
literature reports. ``IMAGENET_TEMPLATES`` is the 80-prompt ensemble of the CLIP paper
(notebooks/Prompt_Engineering_for_ImageNet.ipynb): an option for ImageNet users, never the default.

Where a method's reference code prompts a dataset differently, its recipe says so (``Recipe.dataset_templates``):
KgCoOp (htyao89/KgCoOp, KgCoOp/trainers/kgcoop.py) and CLIPFit (minglllli/CLIPFit, CLIPFit/trainers/ClipFit.py)
prompt DTD with ``DTD_TYPE_OF_TEXTURE_TEMPLATE``; Tip-Adapter and Tip-Adapter-F (gaopengcuhk/Tip-Adapter,
datasets/imagenet.py) prompt ImageNet with the 7-template ensemble ``TIP_ADAPTER_IMAGENET_TEMPLATES``.
"""

from __future__ import annotations

COOP_TEMPLATES: dict[str, str] = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
}

# KgCoOp's and CLIPFit's CUSTOM_TEMPLATES["DescribableTextures"] (CoOp's is "{} texture.")
DTD_TYPE_OF_TEXTURE_TEMPLATE = "a photo of a {}, a type of texture."

# Tip-Adapter's ImageNet prompt ensemble (datasets/imagenet.py, ``imagenet_templates``), in its order
TIP_ADAPTER_IMAGENET_TEMPLATES: tuple[str, ...] = (
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

IMAGENET_TEMPLATES: tuple[str, ...] = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)
