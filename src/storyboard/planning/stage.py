"""The planning stage of a job: which planner, bounded in time, and never worse than the rules.

The rules plan first (it is instant, and it is where an invalid prompt or duration is refused,
as the spec says: the job fails). A language model, when one is chosen, then gets the whole
stage's ``PARSING_TIMEOUT``; whatever goes wrong there (an error, a bad answer twice, the time
running out, a bug) leaves the job with the rules' plan, its ``planner.fallback_reason``
saying why and its tokens still counted.
"""

from __future__ import annotations

import asyncio
import logging

from ..config import Settings
from ..errors import PlanningError
from ..plan import Plan, PlannerInfo
from ..replicate.api import ReplicateAPI
from ..schemas import Scene
from . import choice
from .base import PlanRequest, Usage
from .compose import compose_scenes
from .llm import LLMPlanner
from .rules import plan_by_rules

__all__ = ["Planners", "plan_job"]

log = logging.getLogger("storyboard.planning")


class Planners:
    """The planners of one process: the rules always, and the configured language model,
    built once (one client and its connections serve every job)."""

    def __init__(self, settings: Settings, replicate_api: ReplicateAPI | None = None) -> None:
        """Raises ``ConfigurationError`` now, not at the first job, when the configured
        language model cannot work (a missing key, a malformed URL or model name)."""
        self.settings = settings
        self.default = choice.planner_kind(settings)
        self.llm_kind = choice.llm_kind(settings)
        self._llm: LLMPlanner | None = None
        if self.llm_kind is not None:
            self._llm = choice.make_llm_planner(settings, self.llm_kind,
                                                replicate_api=replicate_api)

    def llm(self) -> LLMPlanner | None:
        """The configured language model's planner, or None when there is none."""
        return self._llm

    def for_request(self, asked: str) -> LLMPlanner | None:
        """The language model a request's ``planner`` (auto | rules | llm) plans with; None
        for the rules."""
        if asked == "rules" or (asked == "auto" and self.default == "rules"):
            return None
        return self.llm()

    async def aclose(self) -> None:
        if self._llm is not None:
            await self._llm.aclose()


def _reason(exc: BaseException, planner: LLMPlanner, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        what = f"timed out after {timeout:g}s"
    elif isinstance(exc, PlanningError):
        what = str(exc)
    else:
        what = f"unexpected {type(exc).__name__}"
    return f"{planner.label}: {what}"


async def plan_job(request: PlanRequest, planner: LLMPlanner | None, settings: Settings,
                   usage: Usage | None = None) -> tuple[Plan, list[Scene]]:
    """The plan for ``request`` and the storyboard's scenes: the language model's when it gives
    a usable one within ``PARSING_TIMEOUT``, else the rules'. Raises ``InvalidRequestError``
    only for input the rules refuse. Every call to the model is added to ``usage`` (the
    caller's: what a stage stopped midway had used is still known)."""
    rules_plan, rules_scenes = plan_by_rules(request.prompt, request.duration, request.style)
    if planner is None:
        return rules_plan, rules_scenes
    usage = usage if usage is not None else Usage()
    try:
        async with asyncio.timeout(settings.parsing_timeout):
            plan = await planner.plan(request, usage)
        return plan, compose_scenes(plan, request.style)
    except Exception as exc:  # the rules' plan stands in for any failure, a bug's too
        reason = _reason(exc, planner, settings.parsing_timeout)
        if isinstance(exc, PlanningError | TimeoutError):
            log.warning("planning: %s; planning with the rules", reason)
        else:
            log.exception("planning: %s; planning with the rules", reason)
    rules_plan.planner = PlannerInfo(
        kind="rules", fallback_reason=reason, input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens, cost=planner.cost(usage))
    return rules_plan, rules_scenes
