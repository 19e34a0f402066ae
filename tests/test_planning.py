"""Planning: the rules' shots, reading and checking answers, durations, composed prompts, and
the two language-model planners against fake servers over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import math

import pytest

from storyboard.config import Settings, get_settings
from storyboard.errors import ConfigurationError
from storyboard.plan import Plan, PlannerInfo
from storyboard.planning import (
    IMAGE_PROMPT_LIMIT,
    Planners,
    PlanRequest,
    compose_image_prompt,
    compose_scenes,
    llm_kind,
    plan_by_rules,
    plan_job,
    planner_kind,
)
from storyboard.planning.answers import read_plan, spread_durations
from storyboard.planning.format import PLAN_SCHEMA, plan_prompt
from storyboard.scenes import parse_prompt_to_scenes, scene_count_for
from storyboard.shots import CameraMovement, ShotSize
from tests.fake_llm import (  # the fixtures register by import, under their own names
    FAKE_LLM_KEY,
    FakeLLM,
    fake_llm_fixture,  # noqa: F401
    fake_llm_server_fixture,  # noqa: F401
    strict_schema_problems,
)
from tests.fake_replicate import (
    FAKE_API_KEY,
    FakeReplicate,
    fake_replicate_fixture,  # noqa: F401
    fake_replicate_server_fixture,  # noqa: F401
)

from .story import LIGHTHOUSE, MARA_LOOK, lighthouse_plan

REQUEST = PlanRequest(prompt=LIGHTHOUSE, duration=45, style="cinematic", aspect_ratio="16:9")
INFO = PlannerInfo(kind="openai", model="m")


def answer(count: int = 9, **changes: object) -> dict:  # type: ignore[type-arg]
    plan = copy.deepcopy(lighthouse_plan(count))
    plan.update(changes)
    return plan


# --- the rules ----------------------------------------------------------------------------


def test_rules_plan_keeps_the_spec_text_and_adds_a_shot_per_beat() -> None:
    plan, scenes = plan_by_rules("A robot exploring Mars", 30, "cinematic")
    spec = parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")
    assert [(s.description, s.image_prompt, s.duration) for s in scenes] == [
        (s.description, s.image_prompt, s.duration) for s in spec]
    assert plan.planner.kind == "rules" and plan.planner.cost == 0
    shots = [(s.shot_size, s.camera_angle, s.camera_movement) for s in scenes]
    assert shots[0][0] is ShotSize.WIDE and scenes[0].transition == "fade_in"  # establishing
    assert shots[1][0] is ShotSize.MEDIUM  # the setup
    assert shots[-1][0] is ShotSize.WIDE and scenes[-1].transition == "fade_out"
    assert len(set(shots)) == len(shots)  # varied coverage: no two shots alike
    assert [s.beat for s in scenes][:2] == ["Opening/Hook", "Context/Setup"]
    # The spec's own function is untouched: its scenes serialise as the spec's four fields.
    assert set(spec[0].model_dump()) == {"scene_number", "description", "duration",
                                         "image_prompt"}


# --- reading answers ------------------------------------------------------------------------


def test_a_valid_answer_reads_into_a_plan() -> None:
    plan, problems = read_plan(json.dumps(answer()), REQUEST, INFO)
    assert problems == [] and plan is not None
    assert [c.id for c in plan.characters] == ["mara", "ezra"]
    assert [s.scene_number for s in plan.scenes] == list(range(1, 10))
    assert math.isclose(sum(s.duration for s in plan.scenes), 45)


@pytest.mark.parametrize("wrap", [
    lambda text: f"Here is the plan:\n```json\n{text}\n```\nEnjoy!",
    lambda text: f"```\n{text}\n```",
    lambda text: f"Sure. {text} Let me know.",
])
def test_json_in_fences_or_prose_is_read(wrap) -> None:  # type: ignore[no-untyped-def]
    plan, problems = read_plan(wrap(json.dumps(answer())), REQUEST, INFO)
    assert problems == [] and plan is not None


def test_enum_words_are_forgiven_their_case_and_spacing() -> None:
    data = answer()
    data["scenes"][0]["shot_size"] = "Extreme Wide"
    data["scenes"][1]["camera_movement"] = "dolly-in"
    plan, problems = read_plan(json.dumps(data), REQUEST, INFO)
    assert problems == [] and plan is not None
    assert plan.scenes[0].shot_size is ShotSize.EXTREME_WIDE
    assert plan.scenes[1].camera_movement is CameraMovement.DOLLY_IN


def test_ids_are_matched_whatever_their_case() -> None:
    data = answer()
    data["characters"][0]["id"] = "Mara "
    plan, problems = read_plan(json.dumps(data), REQUEST, INFO)
    assert problems == [] and plan is not None and plan.characters[0].id == "mara"


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda d: d["scenes"].pop(), "there are 8 scenes; exactly 9 are needed"),
    (lambda d: d["scenes"][2]["characters"].append("ghost"), "character 'ghost', which is not"),
    (lambda d: d["scenes"][2].update(location="moon"), "location 'moon', which is not"),
    (lambda d: d["scenes"][4].update(visual="  "), "scene 5 has an empty visual"),
    (lambda d: d["characters"].append(dict(d["characters"][0])), "'mara' is used twice"),
    (lambda d: d["scenes"][0].update(shot_size="gigantic"), "scenes[0].shot_size"),
    (lambda d: d.pop("style"), "style"),
    (lambda d: d["characters"][1].update(look=""), "character 'ezra' has an empty look"),
])
def test_bad_answers_are_refused_with_what_to_fix(change, fragment: str) -> None:  # type: ignore[no-untyped-def]
    data = answer()
    change(data)
    plan, problems = read_plan(json.dumps(data), REQUEST, INFO)
    assert plan is None
    assert any(fragment in p for p in problems), problems


@pytest.mark.parametrize("text", ["", "I cannot help with that.", "[1, 2, 3]", "{\"title\": 1"])
def test_garbage_is_refused(text: str) -> None:
    plan, problems = read_plan(text, REQUEST, INFO)
    assert plan is None and problems


def test_long_texts_are_cut_at_a_word_not_refused() -> None:
    data = answer()
    data["characters"][0]["look"] = "very " * 200 + "tall"
    plan, problems = read_plan(json.dumps(data), REQUEST, INFO)
    assert problems == [] and plan is not None
    assert len(plan.characters[0].look) <= 400 and plan.characters[0].look.endswith("\u2026")


# --- durations ------------------------------------------------------------------------------


@pytest.mark.parametrize("total", [5, 13, 30, 45, 97, 300])
def test_equal_asks_give_the_specs_even_spread(total: int) -> None:
    count = scene_count_for(total)
    spec = [s.duration for s in parse_prompt_to_scenes("x", total)]
    assert spread_durations([4.0] * count, total) == spec


@pytest.mark.parametrize("asked", [
    [10.0, 2.0, 3.0, 30.0, 0.5, 1.0, 2.0, 8.0, 1.0],
    [None, 5.0, -3.0, 5.0, None, 5.0, 0.0, 5.0, 5.0],
    [100.0, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01],
])
def test_durations_sum_exactly_each_at_least_a_second(asked: list[float | None]) -> None:
    lengths = spread_durations(asked, 45)
    assert math.isclose(sum(lengths), 45, abs_tol=1e-9)
    assert min(lengths) >= 1.0
    assert all(round(x, 2) == x for x in lengths)


def test_durations_keep_the_proportions_asked() -> None:
    lengths = spread_durations([2.0, 4.0, 2.0, 4.0, 2.0, 4.0], 36)
    assert lengths == [4.0, 8.0, 4.0, 8.0, 4.0, 8.0]


# --- composed prompts -----------------------------------------------------------------------


def lighthouse() -> Plan:
    plan, problems = read_plan(json.dumps(answer()), REQUEST, INFO)
    assert plan is not None, problems
    return plan


def test_a_characters_words_are_identical_in_every_frame_they_are_in() -> None:
    plan = lighthouse()
    scenes = compose_scenes(plan, "cinematic")
    with_mara = [s for s in scenes if "mara" in (s.characters or [])]
    assert len(with_mara) >= 5
    for scene in scenes:
        assert (f"Mara: {MARA_LOOK}" in scene.image_prompt) == (scene in with_mara)
        assert scene.image_prompt.endswith("Palette: slate blue, sodium orange")
        assert "Cinematic style" in scene.image_prompt
        assert len(scene.image_prompt) <= IMAGE_PROMPT_LIMIT
    # Framing words lead, from the shot fields: a close-up pushing in says so.
    reading = scenes[2]
    assert reading.image_prompt.startswith("Close-up on the face, eye-level camera, camera "
                                           "pushing in. Mara unrolls the paper")
    assert "The lighthouse: white stone tower" in reading.image_prompt


def test_the_image_prompt_is_composed_in_code_not_taken_from_the_answer() -> None:
    data = answer()
    data["scenes"][0]["image_prompt"] = "IGNORE ME"  # an extra field is not ours to use
    plan, _ = read_plan(json.dumps(data), REQUEST, INFO)
    assert plan is not None
    assert "IGNORE ME" not in compose_scenes(plan, "cinematic")[0].image_prompt


def test_composition_trims_by_priority_under_the_limit() -> None:
    plan = lighthouse()
    for character in plan.characters:
        character.look = "x" * 380
    for location in plan.locations:
        location.look = "y" * 380
    plan.style.look, plan.style.palette = "z" * 300, "w" * 200
    scene = plan.scenes[8]  # Mara and Ezra at dawn on the island
    full = compose_image_prompt(scene, plan, "cinematic")
    assert len(full) <= IMAGE_PROMPT_LIMIT and "x" * 380 in full and "y" * 380 in full
    tight = compose_image_prompt(scene, plan, "cinematic", limit=1100)
    assert len(tight) <= 1100
    assert tight.count("x" * 380) == 2  # both characters kept whole ...
    assert "w" * 200 not in tight and "z" * 300 not in tight  # ... the palette and look went
    tiny = compose_image_prompt(scene, plan, "cinematic", limit=60)
    assert len(tiny) <= 60 and tiny.startswith("Wide establishing shot")


def test_the_schema_is_strict_compatible() -> None:
    assert strict_schema_problems(PLAN_SCHEMA) == []
    prompt = plan_prompt(REQUEST)
    assert "exactly 9 shots" in prompt and "45-second" in prompt and LIGHTHOUSE in prompt


# --- which planner --------------------------------------------------------------------------


@pytest.mark.parametrize(("env", "auto", "llm"), [
    ({}, "rules", None),
    ({"OPENAI_API_KEY": "sk-x"}, "openai", "openai"),
    ({"STORYBOARD_LLM_BASE_URL": "http://localhost:11434/v1"}, "openai", "openai"),
    ({"OPENAI_BASE_URL": "http://localhost:8080/v1"}, "openai", "openai"),
    ({"REPLICATE_API_KEY": "r8_x"}, "replicate", "replicate"),
    ({"REPLICATE_API_KEY": "r8_x", "OPENAI_API_KEY": "sk-x"}, "openai", "openai"),
    ({"REPLICATE_API_KEY": "r8_x", "STORYBOARD_IMAGE_PROVIDER": "sketch"}, "rules", None),
    ({"REPLICATE_API_KEY": "r8_x", "STORYBOARD_PLANNER": "rules"}, "rules", "replicate"),
    ({"OPENAI_API_KEY": "sk-x", "STORYBOARD_PLANNER": "replicate"}, "replicate", "replicate"),
])
def test_auto_picks_openai_then_replicate_then_rules(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], auto: str, llm: str | None) -> None:
    monkeypatch.setenv("STORYBOARD_PLANNER", "auto")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = get_settings()
    assert planner_kind(settings) == auto and llm_kind(settings) == llm


def test_settings_that_cannot_work_say_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="STORYBOARD_LLM_API_KEY"):
        Planners(get_settings(planner="openai"))
    with pytest.raises(ConfigurationError, match="REPLICATE_API_KEY"):
        Planners(get_settings(planner="replicate"))
    with pytest.raises(ConfigurationError, match="STORYBOARD_LLM_MODEL"):
        Planners(get_settings(planner="replicate", replicate_api_key="r8_x",
                              llm_model="not a model"))
    with pytest.raises(ConfigurationError, match="http"):
        Planners(get_settings(planner="openai", llm_base_url="localhost:11434"))


# --- the OpenAI-compatible planner against a fake server -----------------------------------


def openai_settings(fake: FakeLLM, **extra: object) -> Settings:
    return get_settings(planner="openai", llm_base_url=fake.base_url, llm_api_key=FAKE_LLM_KEY,
                        **extra)


def plan_with(settings: Settings, request: PlanRequest = REQUEST) -> tuple[Plan, list]:  # type: ignore[type-arg]
    async def main() -> tuple[Plan, list]:  # type: ignore[type-arg]
        planners = Planners(settings)
        try:
            return await plan_job(request, planners.llm(), settings)
        finally:
            await planners.aclose()

    return asyncio.run(main())


def test_openai_planner_asks_for_strict_structured_output(fake_llm: FakeLLM) -> None:
    plan, scenes = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "openai" and plan.planner.model == "gpt-4o-mini"
    assert plan.planner.fallback_reason is None and len(scenes) == 9
    (body,) = fake_llm.requests
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fake_llm.schema_problems == []
    # The format is in the prompt too (for servers that ignore the schema).
    assert '"shot_size"' in body["messages"][1]["content"]
    assert fake_llm.headers[0]["authorization"] == f"Bearer {FAKE_LLM_KEY}"
    # Tokens counted from the answer's usage and priced at the default model's price.
    assert plan.planner.input_tokens > 0 and plan.planner.output_tokens > 0
    expected = (plan.planner.input_tokens * 0.15 + plan.planner.output_tokens * 0.60) / 1e6
    assert math.isclose(plan.planner.cost, expected, rel_tol=1e-6)


def test_an_invalid_answer_gets_one_repair_turn_with_the_problems(fake_llm: FakeLLM) -> None:
    wrong = answer()
    wrong["scenes"][3]["characters"] = ["nobody"]
    fake_llm.answer(json.dumps(wrong))
    plan, _ = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "openai"
    assert len(fake_llm.requests) == 2
    repair = fake_llm.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": json.dumps(wrong)}
    assert "character 'nobody'" in repair[-1]["content"]
    # Both turns' tokens are counted.
    assert plan.planner.input_tokens > 2 * 300


@pytest.mark.parametrize(("script", "reason"), [
    (["garbage", "more garbage"], "no usable plan after one repair"),
    ([json.dumps(answer(7)), json.dumps(answer(8))], "there are 8 scenes; exactly 9"),
    ([json.dumps(answer(9, characters=[]))] * 2, "which is not in characters"),
])
def test_no_valid_plan_falls_back_to_the_rules_saying_why(
        fake_llm: FakeLLM, script: list[str], reason: str) -> None:
    for text in script:
        fake_llm.answer(text)
    plan, scenes = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "rules"
    assert plan.planner.fallback_reason is not None
    assert plan.planner.fallback_reason.startswith("openai (gpt-4o-mini): ")
    assert reason in plan.planner.fallback_reason
    assert plan.planner.input_tokens > 0 and plan.planner.cost > 0  # paid for all the same
    assert [s.description for s in scenes] == [
        s.description for s in parse_prompt_to_scenes(LIGHTHOUSE, 45, "cinematic")]


def test_server_errors_are_retried_with_backoff(fake_llm: FakeLLM) -> None:
    fake_llm.answer(status=500, error="overloaded")
    fake_llm.answer(status=429, error="slow down", headers={"retry-after": "0"})
    plan, _ = plan_with(openai_settings(fake_llm, retry_base_delay=0.01))
    assert plan.planner.kind == "openai" and len(fake_llm.requests) == 3


def test_errors_that_outlast_the_retries_fall_back(fake_llm: FakeLLM) -> None:
    fake_llm.answer(status=503, error="down", times=3)
    plan, _ = plan_with(openai_settings(fake_llm, retry_base_delay=0.01))
    assert plan.planner.kind == "rules" and len(fake_llm.requests) == 3
    assert "HTTP 503" in (plan.planner.fallback_reason or "")


def test_a_hang_is_bounded_by_the_parsing_timeout(fake_llm: FakeLLM) -> None:
    fake_llm.answer(delay=30)
    plan, scenes = plan_with(openai_settings(fake_llm, parsing_timeout=0.5))
    assert plan.planner.kind == "rules" and len(scenes) == 9
    assert plan.planner.fallback_reason == "openai (gpt-4o-mini): timed out after 0.5s"


def test_a_server_that_ignores_the_schema_is_still_read(fake_llm: FakeLLM) -> None:
    """A local model answering in prose with a fenced block: the format was in the prompt."""
    fake_llm.answer(f"Sure! Here you go:\n```json\n{json.dumps(answer())}\n```")
    plan, _ = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "openai" and len(fake_llm.requests) == 1


def test_a_server_that_refuses_the_schema_is_asked_without_it(fake_llm: FakeLLM) -> None:
    fake_llm.refuse_schema = True
    settings = openai_settings(fake_llm)

    async def main() -> list[Plan]:
        planners = Planners(settings)
        try:
            return [(await plan_job(REQUEST, planners.llm(), settings))[0] for _ in range(2)]
        finally:
            await planners.aclose()

    first, second = asyncio.run(main())
    assert first.planner.kind == second.planner.kind == "openai"
    # Asked with the schema once, then never again by this process.
    assert ["response_format" in r for r in fake_llm.requests] == [True, False, False]
    # A local server gets max_tokens; OpenAI's own API max_completion_tokens.
    assert "max_tokens" in fake_llm.requests[1]


def test_the_key_never_reaches_an_error_or_the_log(
        fake_llm: FakeLLM, caplog: pytest.LogCaptureFixture) -> None:
    wrong = "sk-wrong-key-abcdef0123456789"
    caplog.set_level(logging.DEBUG)
    settings = get_settings(planner="openai", llm_base_url=fake_llm.base_url, llm_api_key=wrong)
    plan, _ = plan_with(settings)
    assert plan.planner.kind == "rules"
    assert "rejected the API key (HTTP 401)" in (plan.planner.fallback_reason or "")
    assert len(fake_llm.requests) == 1  # a rejected key is not retried
    assert wrong not in plan.model_dump_json()
    assert wrong not in caplog.text


def test_a_missing_model_says_which_setting(fake_llm: FakeLLM) -> None:
    fake_llm.answer(status=404, error="The model `nope` does not exist")
    plan, _ = plan_with(openai_settings(fake_llm, llm_model="nope"))
    assert "no model 'nope'" in (plan.planner.fallback_reason or "")
    assert "STORYBOARD_LLM_MODEL" in (plan.planner.fallback_reason or "")


def test_a_refusal_falls_back(fake_llm: FakeLLM) -> None:
    fake_llm.answer(refusal="I can't help with that.", times=2)
    plan, _ = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "rules"
    assert "refused" in (plan.planner.fallback_reason or "")


def test_the_rules_refuse_bad_input_before_any_model_is_asked(fake_llm: FakeLLM) -> None:
    from storyboard.errors import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="duration"):
        plan_with(openai_settings(fake_llm), PlanRequest(prompt="x", duration=3))
    assert fake_llm.requests == []


# --- the Replicate planner against the fake Replicate ---------------------------------------


def replicate_settings(fake: FakeReplicate, **extra: object) -> Settings:
    return get_settings(planner="replicate", replicate_api_key=FAKE_API_KEY,
                        replicate_base_url=fake.base_url, replicate_poll_interval=0.01,
                        **extra)


def test_replicate_planner_joins_the_streamed_tokens(fake_replicate: FakeReplicate) -> None:
    fake_replicate.plan(latency=0.2)  # still streaming when the create's wait is over
    plan, scenes = plan_with(replicate_settings(fake_replicate, replicate_wait=1))
    assert plan.planner.kind == "replicate" and plan.planner.model == "openai/gpt-4o-mini"
    assert len(scenes) == 9 and plan.planner.fallback_reason is None
    (create,) = fake_replicate.creations
    assert create.path == "/v1/models/openai/gpt-4o-mini/predictions"
    inputs = create.body["input"]
    assert "exactly 9 shots" in inputs["prompt"] and inputs["system_prompt"]
    assert inputs["max_completion_tokens"] > 0
    assert create.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    # Tokens from the prediction's metrics.
    assert plan.planner.input_tokens > 0 and plan.planner.output_tokens > 0


def test_replicate_planner_repairs_and_falls_back(fake_replicate: FakeReplicate) -> None:
    wrong = answer(9)
    wrong["scenes"].pop()
    fake_replicate.answer_text(json.dumps(wrong))
    plan, _ = plan_with(replicate_settings(fake_replicate))
    assert plan.planner.kind == "replicate"
    second = fake_replicate.creations[1].body["input"]["prompt"]
    assert "[YOU ANSWERED]" in second and "exactly 9 are needed" in second

    fake_replicate.answer_text("no", times=2)
    plan, _ = plan_with(replicate_settings(fake_replicate))
    assert plan.planner.kind == "rules" and "replicate (openai/gpt-4o-mini)" in (
        plan.planner.fallback_reason or "")


def test_replicate_planner_retries_a_failed_prediction(fake_replicate: FakeReplicate) -> None:
    fake_replicate.plan("failed", error="CUDA out of memory")
    plan, _ = plan_with(replicate_settings(fake_replicate, retry_base_delay=0.01))
    assert plan.planner.kind == "replicate" and len(fake_replicate.creations) == 2


def test_replicate_planner_with_a_llama_model(fake_replicate: FakeReplicate) -> None:
    plan, _ = plan_with(replicate_settings(fake_replicate,
                                           llm_model="meta/meta-llama-3-8b-instruct"))
    assert plan.planner.model == "meta/meta-llama-3-8b-instruct"
    assert "max_tokens" in fake_replicate.creations[0].body["input"]
    assert plan.planner.cost == 0  # no price known for it: counted free, with a warning


def test_replicate_planner_unknown_model_is_not_retried(fake_replicate: FakeReplicate) -> None:
    plan, _ = plan_with(replicate_settings(fake_replicate, llm_model="nobody/no-model"))
    assert plan.planner.kind == "rules" and len(fake_replicate.creations) == 1
    assert "STORYBOARD_LLM_MODEL" in (plan.planner.fallback_reason or "")


def test_a_hung_replicate_prediction_is_cancelled_at_the_timeout(
        fake_replicate: FakeReplicate) -> None:
    fake_replicate.plan("hang")
    plan, _ = plan_with(replicate_settings(fake_replicate, parsing_timeout=1.5,
                                           replicate_wait=1))
    assert plan.planner.fallback_reason == ("replicate (openai/gpt-4o-mini): timed out after "
                                            "1.5s")
    assert fake_replicate.cancels == [next(iter(fake_replicate.predictions))]
    # Had the worker died during the create, Replicate would stop it on its own.
    assert fake_replicate.creations[0].headers["cancel-after"] == "5s"


# --- after review: answers local models give, and what a 400 names ------------------------


@pytest.mark.parametrize("wrap", [
    lambda text: f"<think>The user wants {{shots}}. Let me plan.</think>\n{text}",
    lambda text: f"Plan for {{the idea}} follows: {text}",
])
def test_thoughts_and_braces_before_the_json_are_skipped(wrap) -> None:  # type: ignore[no-untyped-def]
    plan, problems = read_plan(wrap(json.dumps(answer())), REQUEST, INFO)
    assert problems == [] and plan is not None


def test_pathological_answers_are_refused_quickly() -> None:
    for text in ("```" + "{" * 20000 + "```" * 3, "[" * 100_000, "{" * 5000):
        plan, problems = read_plan(text, REQUEST, INFO)
        assert plan is None and problems


def test_huge_durations_still_spread_exactly() -> None:
    lengths = spread_durations([1e308, 1e308, 5, 5, 5, 5, 5, 5, 5], 45)
    assert all(math.isfinite(x) and x >= 1 for x in lengths)
    assert math.isclose(sum(lengths), 45)


def test_a_character_named_twice_in_a_scene_is_drawn_once() -> None:
    data = answer()
    data["scenes"][2]["characters"] = ["mara", "Mara", "mara"]
    plan, _ = read_plan(json.dumps(data), REQUEST, INFO)
    assert plan is not None and plan.scenes[2].characters == ["mara"]
    assert compose_scenes(plan, "x")[2].image_prompt.count("Mara:") == 1


def test_a_cut_off_answer_is_repaired_with_the_reason(fake_llm: FakeLLM) -> None:
    fake_llm.answer(json.dumps(answer())[:500], finish_reason="length")
    plan, _ = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "openai"
    repair = fake_llm.requests[1]["messages"][-1]["content"]
    assert "cut off at the output limit" in repair and "STORYBOARD_LLM_MAX_TOKENS" in repair


def test_a_400_that_names_nothing_we_send_is_no_reason_to_drop_the_schema(
        fake_llm: FakeLLM) -> None:
    fake_llm.answer(status=400, error="This model's maximum context length is 8192 tokens")
    settings = openai_settings(fake_llm)

    async def main() -> list[Plan]:
        planners = Planners(settings)
        try:
            return [(await plan_job(REQUEST, planners.llm(), settings))[0] for _ in range(2)]
        finally:
            await planners.aclose()

    first, second = asyncio.run(main())
    assert first.planner.kind == "rules" and "maximum context length" in (
        first.planner.fallback_reason or "")
    assert second.planner.kind == "openai"
    assert ["response_format" in r for r in fake_llm.requests] == [True, True]


def test_a_model_that_refuses_a_temperature_is_asked_without(fake_llm: FakeLLM) -> None:
    fake_llm.answer(status=400, error="Unsupported value: 'temperature' does not support 0.7 "
                    "with this model. Only the default (1) value is supported.")
    plan, _ = plan_with(openai_settings(fake_llm))
    assert plan.planner.kind == "openai"
    assert "temperature" in fake_llm.requests[0] and "temperature" not in fake_llm.requests[1]
    assert "response_format" in fake_llm.requests[1]  # the schema is kept


def test_credentials_in_the_base_url_never_reach_a_message(fake_llm: FakeLLM,
                                                           caplog: pytest.LogCaptureFixture,
                                                           ) -> None:
    caplog.set_level(logging.DEBUG)
    settings = get_settings(planner="openai", llm_api_key=FAKE_LLM_KEY, retry_base_delay=0.01,
                            llm_base_url="http://bob:hunter2secret@127.0.0.1:9/v1?token=t0p")
    plan, _ = plan_with(settings)
    reason = plan.planner.fallback_reason or ""
    assert "cannot reach http://127.0.0.1:9/v1" in reason
    for secret in ("hunter2secret", "t0p", FAKE_LLM_KEY):
        assert secret not in reason and secret not in caplog.text


def test_replicate_planner_learns_its_prediction_in_time_to_cancel_it(
        fake_replicate: FakeReplicate) -> None:
    """With the default 60 s `Prefer: wait` and a shorter planning limit, the create's own
    wait ends first: the prediction's id is known and it is cancelled at the limit."""
    fake_replicate.plan("hang")
    plan, _ = plan_with(replicate_settings(fake_replicate, parsing_timeout=2.5))
    assert plan.planner.fallback_reason == ("replicate (openai/gpt-4o-mini): timed out after "
                                            "2.5s")
    assert fake_replicate.cancels == [next(iter(fake_replicate.predictions))]
    assert fake_replicate.creations[0].headers["prefer"] == "wait=1"
