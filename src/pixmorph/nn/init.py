"""Weight initialisation of the reference implementations."""

from torch import nn


def init_normal(module: nn.Module, gain: float = 0.02, zero_bias: bool = True) -> nn.Module:
    """Conv/linear weights ~ N(0, gain), biases 0; norm scales ~ N(1, gain). ``zero_bias=False`` keeps
    torch's default biases (uniform ±1/sqrt(fan_in)), as pix2pixHD's ``weights_init`` leaves them."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None and zero_bias:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return module
