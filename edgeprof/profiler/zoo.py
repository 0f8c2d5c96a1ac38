"""The papers' own models that torchvision does not have.

LeNets (seed 001, 32x32 RGB, 10 classes). The name counts conv, pool and fully connected layers, as the
public HC-MAPPO-L configuration does:

- `lenet7`: conv 3->32, conv 32->64, pool, conv 64->128, pool, fc 8192->256, fc 256->10. This is the
  architecture reconstructed field by field from that configuration's `LeNet7.json` (research/hcmappo.md
  section 3.2): every parameter size, feature size and MAC count there is reproduced.
- `lenet9` and `lenet12` are our deeper variants in the same style (their files in that configuration are
  empty): each stage doubles the channels with 3x3 convs (padding 1) and ends in a 2x2 max pool, and a
  three-layer classifier follows.
  lenet9: conv 3->32, conv 32->64, pool, conv 64->128, conv 128->128, pool, fc 8192->256, fc 256->128,
  fc 128->10.
  lenet12: lenet9's convs and pools, then conv 128->256, conv 256->256, pool, fc 4096->256, fc 256->128,
  fc 128->10.

`cerl-net` (seed 003, section 5.1): the 8-layer device model, 64x64 RGB input, 9 outputs. Six 3x3
stride-2 convs, each followed by batch norm and ReLU (4 kernels in the first, 64 in the others), a
transformer layer after the third conv, and a fully connected layer 64 -> 9. The paper's feature sizes are
reproduced exactly: 3x64x64 -> 4x32x32 -> 64x16x16 -> 64x8x8 -> (transformer) 64x8x8 -> 64x4x4 -> 64x2x2
-> 64x1x1 -> 9. The transformer layer is "4 attention units, each with 8 heads and a dimension of 32": we
read it as 4 pre-norm transformer blocks over the 8x8 = 64 positions of 64 channels, each with 8 heads of
dimension 32 and an MLP of width 256. The paper quotes 45.4164 M multiply-adds for this layer from
calflops, which also counts elementwise work; our reading has 33.55 M MACs. The paper does not give the MLP
width, so the difference cannot be settled from the text.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_relu(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.ReLU(inplace=True)]


class LeNet(nn.Module):
    """A plain conv-pool-fc network for 32x32 inputs; `stages` lists the conv widths of each pooled stage."""

    def __init__(self, stages: list[list[int]], hidden: list[int], num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels, size = 3, 32
        for widths in stages:
            for width in widths:
                layers += _conv_relu(channels, width)
                channels = width
            layers.append(nn.MaxPool2d(2))
            size //= 2
        self.features = nn.Sequential(*layers)
        dims = [channels * size * size, *hidden]
        classifier: list[nn.Module] = []
        for d_in, d_out in zip(dims, dims[1:], strict=False):
            classifier += [nn.Linear(d_in, d_out), nn.ReLU(inplace=True)]
        classifier.append(nn.Linear(dims[-1], num_classes))
        self.classifier = nn.Sequential(*classifier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def lenet7(num_classes: int = 10) -> nn.Module:
    return LeNet([[32, 64], [128]], [256], num_classes)


def lenet9(num_classes: int = 10) -> nn.Module:
    return LeNet([[32, 64], [128, 128]], [256, 128], num_classes)


def lenet12(num_classes: int = 10) -> nn.Module:
    return LeNet([[32, 64], [128, 128], [256, 256]], [256, 128], num_classes)


class SelfAttention(nn.Module):
    """Multi-head self-attention written out in matmuls, so every multiply is visible to the counter."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.qkv = nn.Linear(dim, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, tokens, dim)
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (batch, heads, tokens, head_dim)
        attention = torch.softmax(q @ k.transpose(-2, -1) * self.head_dim**-0.5, dim=-1)
        out = (attention @ v).transpose(1, 2).reshape(batch, tokens, self.heads * self.head_dim)
        return self.proj(out)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class FeatureMapTransformer(nn.Module):
    """Transformer blocks over the positions of a (batch, channels, height, width) map; shape preserved."""

    def __init__(self, channels: int, blocks: int, heads: int, head_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[TransformerBlock(channels, heads, head_dim, mlp_dim) for _ in range(blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = x.flatten(2).transpose(1, 2)  # (batch, height*width, channels)
        tokens = self.blocks(tokens)
        # Shaped like the input map itself, which thus stays alive through the blocks: CERL counts the transformer
        # as one of its 8 layers, so no single-tensor cut falls inside it (a shape read alone would cross for free).
        return tokens.transpose(1, 2).reshape_as(x)


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class CerlNet(nn.Module):
    """Seed 003's 8-layer device model: 6 conv layers, 1 transformer layer, 1 fully connected layer."""

    def __init__(self, num_classes: int = 9) -> None:
        super().__init__()
        self.conv1 = _conv_bn_relu(3, 4)
        self.conv2 = _conv_bn_relu(4, 64)
        self.conv3 = _conv_bn_relu(64, 64)
        self.transformer = FeatureMapTransformer(64, blocks=4, heads=8, head_dim=32, mlp_dim=256)
        self.conv4 = _conv_bn_relu(64, 64)
        self.conv5 = _conv_bn_relu(64, 64)
        self.conv6 = _conv_bn_relu(64, 64)
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (batch, 3, 64, 64)
        x = self.transformer(self.conv3(self.conv2(self.conv1(x))))
        x = self.conv6(self.conv5(self.conv4(x)))
        return self.fc(torch.flatten(x, 1))


def cerl_net(num_classes: int = 9) -> nn.Module:
    return CerlNet(num_classes)
