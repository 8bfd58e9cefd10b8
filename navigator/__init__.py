"""ContraFeat navigators (arXiv 2212.07277; spec: shared/design/contrafeat.md).

Modules: ``model`` (the Navigator), ``bases`` (W PCA basis, GANSpace, SeFa, +attention), ``sensors``
(feature networks), ``losses``, ``train`` (training loop, DDP, resume), ``traverse`` (frames, grids,
GIFs, ordering, de-duplication, strength calibration), ``metrics`` (the paper's two scores),
``probe`` (offline landmark/colour attribute probe), ``io`` (safetensors files).

Typical use::

    import torch, editkit, navigator
    from navigator.train import TrainConfig, train_navigator
    net = editkit.load_network("ffhq-512.pkl", device="cuda")
    nav = train_navigator(net.G, TrainConfig(variant="binary", num_directions=30), "runs/nav")
    ws = net.G.mapping(torch.randn(1, net.G.z_dim, device="cuda"), truncation_psi=0.7)
    edited = nav.edit(ws, k=3, strength=1.0)
    frames = navigator.traverse.traversal_frames(net.G, nav, ws[0], 3, 1.0, frames=9)
"""
from . import traverse  # noqa: F401  (navigator.traverse.traversal_frames is a public name)
from .io import load_navigator, save_navigator
from .model import Navigator

__all__ = ["Navigator", "load_navigator", "save_navigator", "traverse"]
