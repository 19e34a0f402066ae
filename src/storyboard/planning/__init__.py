"""Planning: a prompt becomes a plan (a small story bible and one shot per scene).

Three planners behind one stage (``stage.plan_job``):

    rules       the spec's parse_prompt_to_scenes with a shot per beat; offline, instant
    openai      any OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM, ...)
    replicate   a language model hosted on Replicate, with the images' key

A language model's answer is read and checked in ``answers.py``, repaired once, and falls back
to the rules when nothing usable comes back in time. The image prompts are composed from the
plan in code (``compose.py``), so every frame describes a character in the same words.
"""

from .base import Completion, PlanRequest, Usage
from .choice import LLM_SETTINGS_HINT, llm_kind, make_llm_planner, planner_kind
from .compose import (
    IMAGE_PROMPT_LIMIT,
    compose_image_prompt,
    compose_scenes,
    framing_words,
    planned_scene,
)
from .llm import LLMPlanner
from .rules import plan_by_rules
from .stage import Planners, plan_job

__all__ = [
    "IMAGE_PROMPT_LIMIT",
    "LLM_SETTINGS_HINT",
    "Completion",
    "LLMPlanner",
    "PlanRequest",
    "Planners",
    "Usage",
    "compose_image_prompt",
    "compose_scenes",
    "framing_words",
    "llm_kind",
    "make_llm_planner",
    "plan_by_rules",
    "plan_job",
    "planned_scene",
    "planner_kind",
]
