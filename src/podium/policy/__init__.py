"""Policy: Cedar (the schema, the entities, podium's baseline and a project's policies) and the governed path for
operator actions (authorise, audit with the deciding policies, refuse and audit alike).

It sits below every package that decides anything: the governor, budgets, the registry, reviews, runs, people.
"""

from podium.policy._actions import Authorizer, GovernedAction
from podium.policy._cases import CaseResult, run_file, test_suites
from podium.policy._cedar import (
    CALL_ACTIONS,
    NO_CEILING,
    Decision,
    Entity,
    Policy,
    PolicySet,
    agent_entity,
    data_entity,
    model_entity,
    person_entity,
    review_entity,
    run_entity,
    scope_entity,
    tool_entity,
    url_entity,
)
from podium.policy._identity import Identity, KeyFormat, require_identity

__all__ = [
    "CALL_ACTIONS",
    "NO_CEILING",
    "Authorizer",
    "CaseResult",
    "Decision",
    "Entity",
    "GovernedAction",
    "Identity",
    "KeyFormat",
    "Policy",
    "PolicySet",
    "agent_entity",
    "data_entity",
    "model_entity",
    "person_entity",
    "require_identity",
    "review_entity",
    "run_entity",
    "run_file",
    "scope_entity",
    "test_suites",
    "tool_entity",
    "url_entity",
]
