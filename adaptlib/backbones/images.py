"""Image side of a backbone: turning in-memory arrays into normalised tensors and encoding them in batches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .load import Backbone


def arrays_to_tensor(images: np.ndarray, backbone: Backbone) -> torch.Tensor:
    """uint8 [N, H, W, 3] at the backbone's resolution -> normalised float [N, 3, H, W]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    if x.shape[-1] != backbone.image_size:
        x = F.interpolate(x, size=(backbone.image_size, backbone.image_size), mode="bicubic", align_corners=False)
    mean = torch.tensor(backbone.mean).view(1, 3, 1, 1)
    std = torch.tensor(backbone.std).view(1, 3, 1, 1)
    return (x - mean) / std


@torch.no_grad()
def encode_image_arrays(backbone: Backbone, images: np.ndarray, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised image features [N, E] of uint8 arrays, without augmentation."""
    model = backbone.model
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = arrays_to_tensor(images[i:i + batch_size], backbone).to(device)
        out.append(F.normalize(model.encode_image(x).float(), dim=-1).cpu())
    return torch.cat(out)
