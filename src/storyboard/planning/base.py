"""What every planner takes and gives: the request, and the tokens a language model used."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Usage:
    """Tokens a planning stage used, turn by turn (kept by the caller, so what a stage that timed
    out had already used is still counted)."""

    input_tokens: int = 0
    output_tokens: int = 0
    calls: int = 0

    def add(self, completion: Completion) -> None:
        self.input_tokens += completion.input_tokens
        self.output_tokens += completion.output_tokens
        self.calls += 1
