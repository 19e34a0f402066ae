"""The offline sketch renderer: real frames, ratio, composition by beat, deterministic."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from storyboard.config import get_settings
from storyboard.images import ImageRequest, make_provider
from storyboard.images.sketch import FRAME_SIZES, SketchRenderer, render_sketch
from storyboard.scenes import parse_prompt_to_scenes


def _frames(aspect_ratio: str = "16:9", seed: int | None = None) -> list[bytes]:
    scenes = parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")
    return [render_sketch(ImageRequest(prompt=s.image_prompt, scene=s, scenes_total=6,
                                       aspect_ratio=aspect_ratio, seed=seed)) for s in scenes]


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "1:1", "4:3"])
def test_frames_have_the_requested_aspect_ratio(ratio: str) -> None:
    w, h = (int(x) for x in ratio.split(":"))
    for data in _frames(ratio):
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        assert image.size == FRAME_SIZES[ratio]
        assert image.size[0] * h == image.size[1] * w


def test_default_is_16_9() -> None:
    image = Image.open(io.BytesIO(render_sketch(ImageRequest(prompt="x"))))
    assert image.size == (640, 360)


def test_deterministic_for_same_prompt_and_seed() -> None:
    assert _frames(seed=7) == _frames(seed=7)
    assert _frames(seed=7) != _frames(seed=8)


def test_composition_follows_the_beat() -> None:
    frames = [Image.open(io.BytesIO(f)).convert("L") for f in _frames()]

    def ink(image: Image.Image) -> int:
        return sum(image.histogram()[:100])

    def count(image: Image.Image, colour: tuple[int, int, int]) -> int:
        return next((n for n, c in image.getcolors(1 << 20) or [] if c == colour), 0)

    # Each beat draws differently, so frames differ from one another.
    assert len({f.tobytes() for f in frames}) == 6
    # The closing end card has a filled call-to-action button in the accent colour.
    closing = Image.open(io.BytesIO(_frames()[-1])).convert("RGB")
    accent = count(closing, (214, 90, 49))
    assert accent > 500
    opening = Image.open(io.BytesIO(_frames()[0])).convert("RGB")
    assert count(opening, (214, 90, 49)) < accent
    assert all(ink(f) > 1000 for f in frames)  # header, caption and drawing are there


def test_caption_and_numbers_are_drawn() -> None:
    scenes = parse_prompt_to_scenes("x", 15)
    a = render_sketch(ImageRequest(prompt="x", scene=scenes[0], scenes_total=3))
    changed = scenes[0].model_copy(update={"description": "Something else entirely"})
    b = render_sketch(ImageRequest(prompt="x", scene=changed, scenes_total=3))
    assert a != b


def test_provider_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_provider(get_settings()).name == "sketch"
    monkeypatch.setenv("REPLICATE_API_KEY", "r8_x")
    provider = make_provider(get_settings())
    assert provider.name == "replicate"
    asyncio.run(provider.aclose())


def test_sketch_provider_is_free() -> None:
    result = asyncio.run(SketchRenderer().generate(ImageRequest(prompt="x")))
    assert result.extension == "png" and result.cost == 0.0 and result.data
