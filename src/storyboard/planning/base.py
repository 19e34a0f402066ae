"""What every planner takes and gives: the request, and the tokens a language model used."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["Completion", "PlanRequest", "Usage"]


@dataclass(frozen=True)
class PlanRequest:
    """What to plan: the job's prompt, length, style and frame shape."""

    prompt: str
    duration: int
    style: str = "cinematic"
    aspect_ratio: str = "16:9"


@dataclass(frozen=True)
class Completion:
    """One answer of a language model, with the tokens its server counted."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    id: str | None = None  # the server's id for it (a chat completion's, a prediction's)
    truncated: bool = False  # cut off at the output limit
    refusal: str | None = None  # the model declined, saying this


@dataclass
class Usage:
    """Tokens a planning stage used, turn by turn (kept by the caller, so what a stage that timed
    out had already used is still counted)."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: list[Completion] = field(default_factory=list)  # every answer, billed or not
    # Hears the id of a prediction (a Replicate model's) as soon as it exists, before anything
    # waits on it: the job's ledger records it then.
    on_created: Callable[[str], Awaitable[None]] | None = None

    def add(self, completion: Completion) -> None:
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.calls.append(completion)
