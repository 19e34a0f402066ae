"""Replicate's HTTP API, shared by the image provider and the language-model planner."""

from .api import FINAL, RUNNING, ModelRef, ReplicateAPI, valid_prediction_id
from .lost import LostPredictions, lost_key

__all__ = [
    "FINAL",
    "RUNNING",
    "LostPredictions",
    "ModelRef",
    "ReplicateAPI",
    "lost_key",
    "valid_prediction_id",
]
