"""Models: tiers, the in-process local models, and the catalog the governor routes to."""

from podium.models._catalog import ModelCatalog, ModelEntry, Tier, TrainedClassifier, TrainedModels
from podium.models._classifier import ClassifierModel, Prediction, TextClassifier
from podium.models._files import SMOLLM2_135M, PackagedModelFile, sha256_of, verify_model_file
from podium.models._llama import LlamaCppModel
from podium.models._local import LocalModel

__all__ = [
    "SMOLLM2_135M",
    "ClassifierModel",
    "LlamaCppModel",
    "LocalModel",
    "ModelCatalog",
    "ModelEntry",
    "PackagedModelFile",
    "Prediction",
    "TextClassifier",
    "Tier",
    "TrainedClassifier",
    "TrainedModels",
    "sha256_of",
    "verify_model_file",
]
