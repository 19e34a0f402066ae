"""The package's public surface: the spec's names, all exported, all real."""

from __future__ import annotations

import storyboard

SPEC_NAMES = {
    "parse_prompt_to_scenes", "generate_storyboard_task", "save_generated_video", "get_job",
    "Scene", "StoryboardEntry", "VideoProgress", "GenerationRequest", "JobResponse",
    "ReplicateClient", "MAX_RETRIES", "PARSING_TIMEOUT", "IMAGE_GENERATION_TIMEOUT",
    "DEFAULT_SCENE_DURATION",
}


def test_all_lists_the_spec_names() -> None:
    assert SPEC_NAMES <= set(storyboard.__all__)
    for name in storyboard.__all__:
        assert getattr(storyboard, name) is not None


def test_all_is_complete() -> None:
    public = {n for n in vars(storyboard) if not n.startswith("_")}
    modules = {n for n, v in vars(storyboard).items() if type(v).__name__ == "module"}
    assert public - modules == set(storyboard.__all__)


def test_constants_match_the_spec_and_the_settings(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("STORYBOARD_RETRY_BASE_DELAY")
    assert storyboard.MAX_RETRIES == 3
    assert storyboard.PARSING_TIMEOUT == 30
    assert storyboard.IMAGE_GENERATION_TIMEOUT == 120
    assert storyboard.DEFAULT_SCENE_DURATION == 5.0
    defaults = storyboard.Settings()
    assert defaults.max_retries == storyboard.MAX_RETRIES
    assert defaults.image_timeout == storyboard.IMAGE_GENERATION_TIMEOUT
    assert defaults.parsing_timeout == storyboard.PARSING_TIMEOUT
    assert defaults.retry_base_delay == 2.0


def test_settings_from_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STORYBOARD_MAX_RETRIES", "5")
    monkeypatch.setenv("STORYBOARD_IMAGE_TIMEOUT", "9")
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8_token")
    s = storyboard.get_settings()
    assert s.max_retries == 5 and s.image_timeout == 9
    assert s.replicate_api_key is not None
    assert s.replicate_api_key.get_secret_value() == "r8_token"
    assert "r8_token" not in repr(s)
