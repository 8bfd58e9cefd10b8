"""ContraFeat navigators: model, bases and baselines, sensors, losses, training, traversals, metrics."""
from .io import load_navigator, save_navigator
from .model import Navigator

__all__ = ["Navigator", "load_navigator", "save_navigator"]
