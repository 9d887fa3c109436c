"""A model of your own for trainlab: any nn.Module class (or function returning one).

trainlab passes `input_shape` and `num_classes` when the constructor takes them; every other
argument comes from the config's `[model] args`.
"""

import math

import torch
from torch import nn


class GatedMLP(nn.Module):
    """Hidden layers of gated linear units (Dauphin et al. 2017): h = (W x) * sigmoid(V x)."""

    def __init__(self, input_shape, num_classes, width=64, depth=2):
        super().__init__()
        layers, fan_in = [], math.prod(input_shape)
        for _ in range(depth):
            layers.append(nn.Linear(fan_in, 2 * width))
            layers.append(nn.GLU(dim=-1))
            fan_in = width
        self.body = nn.Sequential(nn.Flatten(), *layers)
        self.head = nn.Linear(fan_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))
