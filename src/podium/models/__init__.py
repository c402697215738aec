"""Models: tiers, the in-process local models, sentence embeddings, and the catalog the governor routes to."""

from podium.models._breaker import BreakerPolicy, Breakers, CircuitBreaker
from podium.models._catalog import (
    ModelCatalog,
    ModelEntry,
    ModelState,
    ServedClassifiers,
    TrainedClassifier,
    TrainedModels,
    model_states,
)
from podium.models._classifier import ClassifierModel, Prediction, TextClassifier
from podium.models._config import BreakerSetting, DiscoverySetting, ModelConfig, ResilienceSetting, RoutingSetting
from podium.models._embeddings import MINILM_INT8, Embedder, MiniLM, embedder
from podium.models._files import SMOLLM2_135M, PackagedModelFile, read_verified, sha256_of, verify_model_file
from podium.models._llama import LlamaCppModel
from podium.models._local import COMPUTE_SECONDS, LocalModel, to_chat
from podium.models._parts import WINDOW_WORDS, Lexicon, parts, sentences_of_words
from podium.models._remote import check_endpoint, openai_compatible
from podium.models._route_eval import FLOOR_SHARES, CostColumn, evaluate, load_queries
from podium.models._route_prior import PriorScorer, RoutePrior
from podium.models._router import Features, RouteDecision, Router, RouteTier, Task

__all__ = [
    "COMPUTE_SECONDS",
    "FLOOR_SHARES",
    "MINILM_INT8",
    "SMOLLM2_135M",
    "WINDOW_WORDS",
    "BreakerPolicy",
    "BreakerSetting",
    "Breakers",
    "CircuitBreaker",
    "ClassifierModel",
    "CostColumn",
    "DiscoverySetting",
    "Embedder",
    "Features",
    "Lexicon",
    "LlamaCppModel",
    "LocalModel",
    "MiniLM",
    "ModelCatalog",
    "ModelConfig",
    "ModelEntry",
    "ModelState",
    "PackagedModelFile",
    "Prediction",
    "PriorScorer",
    "ResilienceSetting",
    "RouteDecision",
    "RoutePrior",
    "RouteTier",
    "Router",
    "RoutingSetting",
    "ServedClassifiers",
    "Task",
    "TextClassifier",
    "TrainedClassifier",
    "TrainedModels",
    "check_endpoint",
    "embedder",
    "evaluate",
    "load_queries",
    "model_states",
    "openai_compatible",
    "parts",
    "read_verified",
    "sentences_of_words",
    "sha256_of",
    "to_chat",
    "verify_model_file",
]
