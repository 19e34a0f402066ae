"""Budgets: a cap per job and a daily budget for the fleet; costs stay predictable.

- A job's cap is its request's ``max_cost``, else ``STORYBOARD_MAX_JOB_COST``. A job whose
  estimate is over it is refused (422) before anything is spent; a run never spends past it:
  every paid create first takes its price from what is left of the cap (what the ledger says
  the job was billed or may be, and this run's creates), retries, regenerations and re-renders
  all counted. A scene the cap stops says so and the board so far is kept.
- ``STORYBOARD_DAILY_BUDGET`` is for the whole fleet, in the database: each paid create reserves
  its price in the ledger in a transaction that checks the day's spend with the day's row
  locked (``db.ledger.reserve_daily``), so workers on any machine cannot pass it together. New
  paid work is refused once the day's spend would pass it (429 with when it resets, at midnight
  UTC); free work (the sketch renderer) goes on.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from ..config import Settings
from ..db import ledger
from ..db.models import utcnow
from ..errors import DailyBudgetError, InvalidRequestError, JobStateError, PermanentImageError
from ..images import provider_name
from ..planning import llm_kind, planner_kind
from ..planning.llm import DEFAULT_PRICES
from ..scenes import scene_count_for
from ..schemas import GenerationRequest, StoryboardEntry

if TYPE_CHECKING:
    from .runtime import JobRuntime

__all__ = [
    "BudgetReached",
    "RunBudget",
    "check_new_job",
    "check_new_work",
    "check_redraw",
    "estimate_request",
    "image_price",
    "job_cap",
    "reset_in",
    "usd",
]

# What a plan takes, to estimate its cost before it is made: the prompt and format, and an
# answer's worth of tokens per scene.
_PLAN_INPUT_TOKENS = 1_800
_PLAN_OUTPUT_TOKENS_PER_SCENE = 260


def usd(amount: float) -> str:
    """"$0.018", "$0.0004", "$0.00": to the tenth of a cent, no trailing zeros past cents."""
    text = f"{amount:.4f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


class BudgetReached(PermanentImageError):
    """A paid create would pass the job's cap or the day's budget: the scene is not drawn."""


def image_price(settings: Settings) -> float:
    """What one image costs with the configured provider: Replicate's price; the sketch
    renderer and a Cog model on your own hardware are free to us."""
    return settings.image_price if provider_name(settings) == "replicate" else 0.0


def job_cap(settings: Settings, params: dict[str, Any]) -> float:
    """The most a job may spend: its own ``max_cost``, else the server's default."""
    own = params.get("max_cost")
    return float(own) if isinstance(own, int | float) and own > 0 else settings.max_job_cost


def estimate_request(settings: Settings, request: GenerationRequest) -> float:
    """What a new job will cost: its images at the provider's price, and its plan's tokens
    when a language model plans it."""
    scenes = scene_count_for(request.duration)
    cost = scenes * image_price(settings)
    uses_llm = request.planner == "llm" or (request.planner == "auto"
                                            and planner_kind(settings) != "rules")
    if uses_llm and llm_kind(settings) is not None:
        model = settings.llm_model or ("gpt-4o-mini" if llm_kind(settings) == "openai"
                                       else "openai/gpt-4o-mini")
        known = DEFAULT_PRICES.get(model, (0.0, 0.0))
        in_price = settings.llm_input_price if settings.llm_input_price is not None else known[0]
        out_price = (settings.llm_output_price if settings.llm_output_price is not None
                     else known[1])
        tokens_out = _PLAN_OUTPUT_TOKENS_PER_SCENE * scenes
        cost += (_PLAN_INPUT_TOKENS * in_price + tokens_out * out_price) / 1_000_000
    return round(cost, 6)


def reset_in(now: datetime | None = None) -> float:
    """Seconds until the daily budget starts again (midnight UTC)."""
    now = now or utcnow()
    return (ledger.day_start(now) + timedelta(days=1) - now).total_seconds()


def check_new_work(engine: Engine, settings: Settings, *, cost: float, cap: float | None = None,
                   spent: float = 0.0, field: str | None = None) -> None:
    """Refuse work that would pass a budget, before anything is spent: over the job's ``cap``
    (given what the job ``spent``), a 422 naming ``field`` (a new job) or a 409 (more work on
    a job); over the day's budget, a 429 saying when it resets. Free work always passes."""
    if cost <= 0:
        return
    if cap is not None and spent + cost > cap + 1e-9:
        words = (f"the estimate {usd(spent + cost)} is over the job's budget of {usd(cap)}: "
                 "raise max_cost (or STORYBOARD_MAX_JOB_COST), or ask for a shorter video")
        if field is not None:
            raise InvalidRequestError(field, words)
        raise JobStateError(f"This would spend {usd(cost)} more on a job that has "
                            f"{usd(spent)} of its {usd(cap)} budget spent; raise its max_cost")
    if settings.daily_budget is not None:
        today = ledger.spent_today(engine)
        if today + cost > settings.daily_budget + 1e-9:
            seconds = math.ceil(reset_in())
            raise DailyBudgetError(
                f"Today's budget of {usd(settings.daily_budget)} is spent ({usd(today)} so "
                f"far; this needs {usd(cost)}): paid work starts again at midnight UTC, in "
                f"{seconds // 3600} h {seconds % 3600 // 60} min. The sketch renderer is free.",
                retry_after=seconds)


def check_new_job(engine: Engine, settings: Settings, request: GenerationRequest) -> None:
    """A new job's estimate against its cap (422 on ``max_cost``) and the day's budget (429)."""
    check_new_work(engine, settings, cost=estimate_request(settings, request),
                   cap=job_cap(settings, request.model_dump()), field="max_cost")


def check_redraw(engine: Engine, settings: Settings, job_id: int, params: dict[str, Any],
                 frames: int) -> None:
    """Redrawing ``frames`` of a job (regenerate, re-render, render a reviewed plan) against
    what is left of its cap, counting everything the ledger says it spent or may have (409),
    and the day's budget (429)."""
    billed, possible = ledger.job_costs(engine, job_id)
    check_new_work(engine, settings, cost=frames * image_price(settings),
                   cap=job_cap(settings, params), spent=billed + possible)


class RunBudget:
    """A run's side of the budgets: ``before_create`` takes one paid create's price, or says
    why it cannot (``BudgetReached``)."""

    def __init__(self, rt: JobRuntime, job_id: int, params: dict[str, Any]) -> None:
        self.rt, self.job_id = rt, job_id
        self.cap = job_cap(rt.settings, params)
        self.price = rt.provider.price_per_image
        billed, possible = ledger.job_costs(rt.engine, job_id)
        self.committed = billed + possible  # billed or may be: this run adds to it
        self.reached: str | None = None  # why the run stopped short, once it has

    async def before_create(self, entry: StoryboardEntry) -> bool:
        """Take the price of one create for ``entry``; True when a daily reservation was made
        (the ledger's ``reserved`` row, which the prediction then takes over)."""
        if self.price <= 0:
            return False
        if self.committed + self.price > self.cap + 1e-9:
            self.reached = f"the job's budget of {usd(self.cap)} was reached"
            raise BudgetReached(f"Not drawn: {self.reached} ({usd(self.committed)} spent or "
                                f"in flight); raise its max_cost and redraw")
        reserved = False
        daily = self.rt.settings.daily_budget
        if daily is not None:
            reserved = await asyncio.to_thread(
                ledger.reserve_daily, self.rt.engine, budget=daily, price=self.price,
                job_id=self.job_id, scene_number=entry.scene.scene_number,
                version=len(entry.versions) + 1, provider=self.rt.provider.name,
                model=getattr(self.rt.provider, "model", None))
            if not reserved:
                self.reached = f"today's budget of {usd(daily)} was reached"
                raise BudgetReached(f"Not drawn: {self.reached}; paid work starts again at "
                                    "midnight UTC")
        self.committed += self.price
        return reserved
