"""The offline sketch renderer: real frames in the requested ratio that draw the scene's shot
(size, angle, movement, cast), fall back to the rules' shot for old scenes, deterministic."""

from __future__ import annotations

import asyncio
import io
import itertools

import pytest
from PIL import Image

from storyboard.config import get_settings
from storyboard.images import ImageRequest, make_provider
from storyboard.images.sketch import FRAME_SIZES, SketchRenderer, render_sketch
from storyboard.planning.rules import rules_shot
from storyboard.scenes import parse_prompt_to_scenes
from storyboard.schemas import Scene
from storyboard.shots import CameraAngle, CameraMovement, ShotSize, Transition

ACCENT = (214, 90, 49)
RATIOS = ["16:9", "9:16", "1:1", "4:3"]


def _frames(aspect_ratio: str = "16:9", seed: int | None = None) -> list[bytes]:
    scenes = parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")
    return [render_sketch(ImageRequest(prompt=s.image_prompt, scene=s, scenes_total=6,
                                       aspect_ratio=aspect_ratio, seed=seed)) for s in scenes]


def _request(size: ShotSize = ShotSize.MEDIUM, angle: CameraAngle = CameraAngle.EYE_LEVEL,
             movement: CameraMovement = CameraMovement.STATIC, cast: tuple[str, ...] = ("Mara",),
             ratio: str = "16:9", **fields: object) -> ImageRequest:
    scene = Scene(scene_number=3, description="d", duration=5.0, image_prompt="p",
                  shot_size=size, camera_angle=angle, camera_movement=movement,
                  characters=[name.lower() for name in cast], transition=Transition.CUT)
    scene = scene.model_copy(update=fields)
    return ImageRequest(prompt="p", aspect_ratio=ratio, seed=1, scene=scene, scenes_total=6,
                        cast=cast)


def _image(request: ImageRequest) -> Image.Image:
    return Image.open(io.BytesIO(render_sketch(request))).convert("RGB")


def _picture(request: ImageRequest) -> Image.Image:
    """The picture area only: between the header strip and the caption strip, so a shot
    that changed only the lettered shot line does not count as drawn."""
    image = _image(request)
    w, h = image.size
    return image.crop((2, 26, w - 2, h - max(44, h // 6)))


def _count(image: Image.Image, colour: tuple[int, int, int]) -> int:
    return next((n for n, c in image.getcolors(1 << 20) or [] if c == colour), 0)


def _covered(image: Image.Image) -> float:
    """The share of the picture drawn on (anything darker than the paper)."""
    histogram = image.convert("L").histogram()
    return sum(histogram[:235]) / (image.width * image.height)


def _dark(image: Image.Image) -> float:
    histogram = image.convert("L").histogram()
    return sum(histogram[:100]) / (image.width * image.height)


@pytest.mark.parametrize("ratio", RATIOS)
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
    request = _request(ShotSize.CLOSE_UP, CameraAngle.DUTCH, CameraMovement.DOLLY_IN)
    assert render_sketch(request) == render_sketch(request)


def test_old_scenes_get_the_rules_shot() -> None:
    # Scenes stored before planning carry no shot fields: each is drawn as the rules' shot for
    # its position, exactly as if the fields were set.
    scenes = parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")
    assert all(s.shot_size is None and s.camera_angle is None for s in scenes)
    for scene in scenes:
        (size, angle, movement), transition = rules_shot(scene.scene_number, len(scenes))
        planned = scene.model_copy(update={"shot_size": size, "camera_angle": angle,
                                           "camera_movement": movement, "transition": transition})
        old, new = (render_sketch(ImageRequest(prompt=s.image_prompt, scene=s, scenes_total=6))
                    for s in (scene, planned))
        assert old == new


def test_rules_frames_differ_and_carry_camera_notation() -> None:
    frames = [Image.open(io.BytesIO(f)).convert("RGB") for f in _frames()]
    assert len({f.tobytes() for f in frames}) == 6
    assert all(_dark(f) > 0.01 for f in frames)  # header, caption and drawing are there
    # The rules open on a pan (an arrow), hold the context static and close dollying out (a
    # nested frame and four arrows): camera moves are drawn in the accent colour.
    scenes = parse_prompt_to_scenes("A robot exploring Mars", 30, "cinematic")
    opening, context, closing = (
        _picture(ImageRequest(prompt=s.image_prompt, scene=s, scenes_total=6))
        for s in (scenes[0], scenes[1], scenes[-1]))
    assert _count(context, ACCENT) == 0
    assert 0 < _count(opening, ACCENT) < _count(closing, ACCENT)


def test_shot_size_changes_the_picture() -> None:
    pictures = [_picture(_request(size)).tobytes() for size in ShotSize]
    assert len(set(pictures)) == len(ShotSize)


@pytest.mark.parametrize("size", [ShotSize.WIDE, ShotSize.MEDIUM, ShotSize.EXTREME_CLOSE_UP,
                                  ShotSize.INSERT])
def test_camera_angle_changes_the_picture(size: ShotSize) -> None:
    pictures = [_picture(_request(size, angle)).tobytes() for angle in CameraAngle]
    assert len(set(pictures)) == len(CameraAngle)


@pytest.mark.parametrize("size", [ShotSize.FULL, ShotSize.CLOSE_UP])
def test_camera_movement_changes_the_picture(size: ShotSize) -> None:
    pictures = {m: _picture(_request(size, movement=m)) for m in CameraMovement}
    assert len({p.tobytes() for p in pictures.values()}) == len(CameraMovement)
    # Every move but static is notated in the accent colour.
    for movement, picture in pictures.items():
        assert (_count(picture, ACCENT) > 50) == (movement is not CameraMovement.STATIC)


def test_every_shot_is_drawn_differently() -> None:
    combos = list(itertools.product(ShotSize, CameraAngle, CameraMovement))
    pictures = {_picture(_request(*combo)).tobytes() for combo in combos}
    assert len(pictures) == len(combos)


def test_cast_is_drawn_and_named() -> None:
    none, one, two = (_picture(_request(ShotSize.MEDIUM, cast=cast))
                      for cast in [(), ("Mara",), ("Mara", "Tom")])
    assert len({none.tobytes(), one.tobytes(), two.tobytes()}) == 3
    # Two people cover more of a medium shot than one.
    assert _covered(two) > _covered(one)
    # The name is lettered: another name, another picture.
    assert _picture(_request(cast=("Tom",))).tobytes() != one.tobytes()
    # A long cast still draws, names cut to fit.
    many = tuple(f"Character number {i}" for i in range(12))
    assert _picture(_request(ShotSize.WIDE, cast=many)).size == one.size


def test_figure_scale_follows_shot_size() -> None:
    cover = {size: _covered(_picture(_request(size, cast=())))
             for size in (ShotSize.EXTREME_WIDE, ShotSize.WIDE, ShotSize.FULL, ShotSize.MEDIUM)}
    assert list(cover.values()) == sorted(cover.values())
    extreme_wide = _picture(_request(ShotSize.EXTREME_WIDE))
    close_up = _picture(_request(ShotSize.CLOSE_UP))
    # One head filling the frame covers far more of it than tiny figures in a landscape.
    assert _covered(close_up) > 3 * _covered(extreme_wide)
    assert _dark(close_up) > 1.5 * _dark(extreme_wide)


def test_insert_draws_no_figure_and_no_name() -> None:
    named = _picture(_request(ShotSize.INSERT, cast=("Mara", "Tom")))
    assert named.tobytes() == _picture(_request(ShotSize.INSERT, cast=())).tobytes()
    # A close-up names its one face.
    assert (_picture(_request(ShotSize.CLOSE_UP, cast=("Mara",))).tobytes()
            != _picture(_request(ShotSize.CLOSE_UP, cast=())).tobytes())


def test_transition_and_dialogue_are_lettered() -> None:
    cut = _picture(_request(transition=Transition.CUT))
    dissolve = _picture(_request(transition=Transition.DISSOLVE))
    assert cut.tobytes() != dissolve.tobytes()
    # A planned scene without a transition notes none (only old scenes get the rules' one).
    assert _picture(_request(transition=None)).tobytes() not in (cut.tobytes(),
                                                                 dissolve.tobytes())
    quiet = _image(_request())
    spoken = _image(_request(dialogue="We are not alone up here."))
    assert quiet.tobytes() != spoken.tobytes()
    assert _picture(_request()).tobytes() == _picture(_request(dialogue="Hi.")).tobytes()


@pytest.mark.parametrize("ratio", RATIOS)
def test_every_value_renders_in_every_ratio(ratio: str) -> None:
    requests = [
        *(_request(size, ratio=ratio) for size in ShotSize),
        *(_request(ShotSize.FULL, a, ratio=ratio, cast=("Mara", "Tom")) for a in CameraAngle),
        *(_request(ShotSize.MEDIUM_CLOSE_UP, movement=m, ratio=ratio) for m in CameraMovement),
        *(_request(ratio=ratio, transition=t) for t in Transition),
        _request(ShotSize.EXTREME_CLOSE_UP, CameraAngle.DUTCH, CameraMovement.ZOOM_OUT,
                 ratio=ratio, cast=()),
        _request(ratio=ratio, transition=None, beat="A very long beat name " * 5,
                 dialogue="A line of dialogue that runs on and on " * 6),
    ]
    for request in requests:
        image = Image.open(io.BytesIO(render_sketch(request)))
        assert image.format == "PNG" and image.size == FRAME_SIZES[ratio]


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
