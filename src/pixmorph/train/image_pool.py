"""History of generated images (Shrivastava et al.): the discriminator sees a mix of new and old fakes."""

import torch
from torch import Tensor


class ImagePool:
    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """Return a batch the size of ``images``: each image is the new one or, half the time once the
        pool is full, a stored one (which the new one replaces)."""
        if self.size == 0:
            return images
        if self.images and self.images[0].shape[1:] != images.shape[1:]:
            self.images = []  # a run resumed at another crop size: the stored fakes no longer fit the batch
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand(()) > 0.5:
                i = int(torch.randint(0, self.size, ()))
                out.append(self.images[i].to(image.device))
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"images": [t.cpu() for t in self.images]}

    def load_state_dict(self, state: dict) -> None:
        self.images = list(state["images"])
