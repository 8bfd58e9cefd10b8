"""Inversion of aligned face images into a generator's W+ space: encoders, optimisation, hybrid.

Public API::

    from inversion import load_encoder, invert, InversionResult
    enc = load_encoder("e4e_ffhq_encode.pt")           # or an editkit encoder .safetensors
    res = invert(G, images, method="hybrid", encoder=enc)   # images [N, 3, H, W] in [-1, 1]
    res.ws, res.images, res.metrics                      # W+ codes, reconstructions, PSNR/SSIM/LPIPS
"""
from .encoders import Encoder4Editing, LatentEncoder, LightEncoder, load_encoder, save_encoder
from .invert import METHODS, InversionResult, invert

__all__ = ["Encoder4Editing", "LightEncoder", "LatentEncoder", "load_encoder", "save_encoder", "invert",
           "InversionResult", "METHODS"]
