"""Choices and defaults of command-line options, read from the registries and config types.

Not a command: the command modules take their option choices and defaults from here, so a new
model kind, split method, fairness term or audit default reaches the CLI without retyping it.
"""

from __future__ import annotations

import inspect
from dataclasses import MISSING, fields
from typing import Any, get_args, get_type_hints


def audit_default(name: str) -> Any:
    """Default of the :class:`~fairaudit.audit.AuditConfig` field ``name``.

    >>> audit_default("k"), audit_default("min_group_size")
    (10, 30)
    """
    from fairaudit.audit import AuditConfig

    field = next(f for f in fields(AuditConfig) if f.name == name)
    return field.default if field.default is not MISSING else field.default_factory()


def llm_default(name: str) -> Any:
    """Default of the LLM recommender's hyper-parameter ``name``.

    >>> llm_default("pooling"), llm_default("fairness")
    ('sqrt', 'none')
    """
    from fairaudit.models import LLMRecommender

    return inspect.signature(LLMRecommender.__init__).parameters[name].default


def llm_choices(name: str) -> tuple[str, ...]:
    """Values of the LLM recommender's ``Literal``-typed hyper-parameter ``name``.

    >>> llm_choices("pooling")
    ('sqrt', 'mean')
    """
    from fairaudit.models import LLMRecommender

    return get_args(get_type_hints(LLMRecommender.__init__)[name])
