"""Pretrained face networks (PyTorch ports of face-api's MIT-licensed models; weights shipped as
safetensors in ``weights/``): identity descriptor, age and gender, expression, 68 landmarks.

    from editkit import facenets
    net = facenets.load("recognition")           # [N,3,150,150] face-api input -> [N,128]
    res = facenets.analyze(image_uint8)          # tight face crop, any size
    res = facenets.analyze(photo, landmarks=lm)  # or any image + 68 landmarks (pixels)
    facenets.identity_distance(res_a, res_b)     # < 0.6: same person
"""
from __future__ import annotations

from .analyze import (ALL, DEFAULT_BOX_PADDING, FaceAnalysis, analyze, analyze_tensor, identity_distance,
                      identity_similarity, landmarks_from_raw, tight_box)
from .dense import EXPRESSIONS
from .preprocess import MEAN_RGB, preprocess, preprocess_rgb, to_input
from .weights import NETWORKS, load, weights_path

#: face-api's same-person threshold on :func:`identity_distance`
SAME_PERSON_DISTANCE = 0.6
INPUT_SIZES = {"recognition": 150, "age_gender": 112, "expression": 112, "landmarks68": 112}

__all__ = ["ALL", "DEFAULT_BOX_PADDING", "EXPRESSIONS", "FaceAnalysis", "INPUT_SIZES", "MEAN_RGB", "NETWORKS",
           "SAME_PERSON_DISTANCE", "analyze", "analyze_tensor", "identity_distance", "identity_similarity",
           "landmarks_from_raw", "load", "preprocess", "preprocess_rgb", "tight_box", "to_input", "weights_path"]
