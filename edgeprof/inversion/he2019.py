"""He, Zhang & Lee 2019's target networks, rebuilt so that leakage tables can sit beside their published numbers.

"Model inversion attacks against collaborative inference" (ACSAC 2019) splits a CIFAR-10 CNN and an MNIST
LeNet-5 and reports SSIM at named layers (research/inversion.md, section 1.1). The architectures follow
their paper and the layer list of their public code; the module names are theirs, so the table's `after`
column reads `conv11`, `ReLU22`, `ReLU32`. Use them as MODEL `edgeprof.inversion.he2019:cifar10_cnn`;
`edgeprof leakage --cuts all` adds their points that sit inside a layer (before the ReLU, before the pool).
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

# Black-box inverse network trained on the target's own training set (their Table 4), SSIM; and the
# white-box rMLE attack (their Table 3).
PUBLISHED_SSIM = {
    "inverse-net": {"conv11": 0.9993, "ReLU22": 0.6939, "ReLU32": 0.3124},
    "rmle": {"conv11": 0.9960, "ReLU22": 0.6940, "ReLU32": 0.1625},
}


def _conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)


def cifar10_cnn() -> nn.Module:
    """Their CIFAR-10 network for 3x32x32 input: three stages of two 3x3 convs (64, 128, 128 channels) with
    ReLUs and a 2x2 max pool, then fc1 (2048 -> 512) with a sigmoid and fc2 (512 -> 10)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels = 3
    for stage, width in enumerate((64, 128, 128), start=1):
        for conv in (1, 2):
            layers[f"conv{stage}{conv}"] = _conv(channels, width)
            layers[f"ReLU{stage}{conv}"] = nn.ReLU()
            channels = width
        layers[f"pool{stage}"] = nn.MaxPool2d(2, 2)
    layers["flatten"] = nn.Flatten()
    layers["fc1"] = nn.Linear(4 * 4 * 128, 512)
    layers["fc1act"] = nn.Sigmoid()
    layers["fc2"] = nn.Linear(512, 10)
    return nn.Sequential(layers)
