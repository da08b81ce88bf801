"""The seed's named future work: a discriminator per decoder side, trained GAN-style, whose
features give the generator a feature-matching ("perceptual") loss.

PatchGAN (Isola et al. 2017): 4x4 stride-2 convs judge overlapping patches (a 64 px face gives
an 8x8 grid of real/fake scores); spectral norm keeps it stable without BatchNorm.
"""
from __future__ import annotations

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    def __init__(self, width: int = 64, depth: int = 3):
        super().__init__()
        layers, c_in = [], 3
        for i in range(depth):
            c_out = width * 2 ** i
            layers.append(nn.Sequential(spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)))
            c_in = c_out
        self.features = nn.ModuleList(layers)
        self.head = spectral_norm(nn.Conv2d(c_in, 1, 3, 1, 1))

    def forward(self, x):
        """(patch scores, [feature maps of each layer])"""
        feats = []
        for layer in self.features:
            x = layer(x)
            feats.append(x)
        return self.head(x), feats


def discriminators() -> nn.ModuleDict:
    return nn.ModuleDict({"a": PatchDiscriminator(), "b": PatchDiscriminator()})
