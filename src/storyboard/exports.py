"""Storyboard downloads: a printable PDF sheet and a ZIP of the images with the job's JSON.

Both read the job as the API returns it (a ``JobResponse``) and the image files behind its
``/media/...`` URLs; neither touches the database, so they are as easy to test as they are to call
from a route.

- ``build_pdf``: landscape A4 pages with a title block (the prompt, dates, status and approval),
  the frames in scene order in a grid (number, duration, beat, shot line, description and
  dialogue; a placeholder with the reason where a scene has no image) and page numbers.
- ``build_zip``: ``scene-01.png`` ... (the current image of each scene, keeping its real
  extension), ``storyboard.json`` (the JobResponse) and ``index.html``, a contact sheet that
  opens offline.
"""

from __future__ import annotations

import io
import math
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape

from PIL import Image
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from .contact_sheet import render_contact_sheet
from .renders import rendered_animatic
from .scenes import beat_label
from .schemas import JobResponse, StoryboardEntry
from .shotlist import build_shot_list
from .shots import shot_line
from .storage import path_for_url

__all__ = ["Note", "build_pdf", "build_zip", "zip_entry_name"]

_INK = HexColor("#1f1f24")
_MUTED = HexColor("#6b6862")
_RULE = HexColor("#d9d4ca")
_ACCENT = HexColor("#d65a31")
_OK = HexColor("#2f7d4f")
_FAIL = HexColor("#b3261e")
_FAIL_FILL = HexColor("#fbeaea")
_EMPTY_FILL = HexColor("#efece6")

_STATUS_LABELS = {
    "pending": "Pending",
    "parsing": "Planning scenes",
    "generating_storyboard": "Generating images",
    "storyboard_ready": "Storyboard ready",
    "failed": "Failed",
    "cancelled": "Cancelled",
}

_SCENE_STATES = {"pending": "Not generated", "generating": "Being generated"}

# Page geometry, in points.
_PAGE = landscape(A4)
_MARGIN = 32.0
_HEADER = 64.0
_FOOTER = 20.0
_GUTTER = 16.0
_CAPTION = 72.0  # room under each image for the labels and a few lines of description


@lru_cache(maxsize=1)
def _fonts() -> tuple[str, str]:
    """Regular and bold font names: DejaVu Sans when the system has it, else Bitstream Vera.

    Prompts are free text in any language; the 14 standard PDF fonts only cover Latin-1, so a
    TrueType font is embedded. DejaVu covers far more scripts; Vera ships inside reportlab, so
    the export works on a machine with no fonts installed at all.
    """
    candidates = [
        ("SheetSans", Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
         "SheetSans-Bold", Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")),
        ("SheetVera", Path("Vera.ttf"), "SheetVera-Bold", Path("VeraBd.ttf")),
    ]
    for regular, regular_file, bold, bold_file in candidates:
        if regular_file.is_absolute() and not (regular_file.is_file() and bold_file.is_file()):
            continue
        pdfmetrics.registerFont(TTFont(regular, str(regular_file)))
        pdfmetrics.registerFont(TTFont(bold, str(bold_file)))
        return regular, bold
    raise AssertionError("unreachable: reportlab always ships Vera")  # pragma: no cover


def _layout(aspect_ratio: str) -> tuple[int, int]:
    """Columns and rows per page: portrait frames read better four in a row."""
    return (4, 1) if aspect_ratio == "9:16" else (3, 2)


def _ratio(aspect_ratio: str) -> float:
    width, _, height = aspect_ratio.partition(":")
    try:
        return float(width) / float(height)
    except (ValueError, ZeroDivisionError):
        return 16 / 9


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:  # the database keeps UTC without a zone
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%d %b %Y, %H:%M UTC")


_WORD_SLACK = 24  # characters a cut may give up to end on a whole word


def _fit_paragraph(text: str, style: ParagraphStyle, width: float, height: float) -> Paragraph:
    """``text`` as a paragraph, cut (with an ellipsis) to fit ``width`` x ``height``: at a word
    where one is near, else mid-word (a long word, or a script written without spaces)."""
    para = Paragraph(escape(text), style)
    if para.wrap(width, height)[1] <= height:
        return para

    def cut(n: int) -> Paragraph:
        return Paragraph(escape(text[:n].rstrip()) + "\u2026", style)

    low, high = 0, len(text)
    while low < high:  # the longest prefix, in characters, that still fits
        mid = (low + high + 1) // 2
        if cut(mid).wrap(width, height)[1] <= height:
            low = mid
        else:
            high = mid - 1
    space = text.rfind(" ", 0, low + 1)
    if space > 0 and low - space <= _WORD_SLACK:
        low = space  # end on a whole word when that loses little
    return cut(low)


def _fit_line(text: str, font: str, size: float, width: float, canvas: Canvas) -> str:
    """``text`` cut (with an ellipsis) to ``width`` points on one line."""
    if canvas.stringWidth(text, font, size) <= width:
        return text
    while text and canvas.stringWidth(text + "\u2026", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "\u2026"


def _image_for(entry: StoryboardEntry, media_dir: Path) -> Image.Image | None:
    if not entry.image_url:
        return None
    path = path_for_url(media_dir, entry.image_url)
    if path is None:
        return None
    try:
        with Image.open(path) as image:
            # reportlab draws PNG and JPEG natively; converting covers WebP and palette images.
            return image.convert("RGB")
    except OSError:
        return None


class Note(Protocol):
    """A reviewer's comment as the sheet prints it (``jobs.comments.CommentInfo``)."""

    scene_number: int | None
    kind: str
    author: str
    text: str
    created_at: datetime


class _Sheet:
    """Draws one job's pages on a canvas."""

    def __init__(self, canvas: Canvas, job: JobResponse, media_dir: Path,
                 notes: Sequence[Note] = ()) -> None:
        self.canvas = canvas
        self.job = job
        self.media_dir = media_dir
        self.notes = notes
        self.regular, self.bold = _fonts()
        params = job.parameters or {}
        self.aspect_ratio = str(params.get("aspect_ratio") or "16:9")
        self.entries = sorted(job.storyboard or [], key=lambda e: e.scene.scene_number)
        self.columns, self.rows = _layout(self.aspect_ratio)
        per_page = self.columns * self.rows
        self.frame_pages = max(1, math.ceil(len(self.entries) / per_page))
        self.exported = datetime.now(UTC)
        self.title_style = ParagraphStyle(
            "title", fontName=self.bold, fontSize=15, leading=18, textColor=_INK)
        self.body_style = ParagraphStyle(
            "body", fontName=self.regular, fontSize=8.5, leading=11, textColor=_INK)
        self.dialogue_style = ParagraphStyle(
            "dialogue", fontName=self.regular, fontSize=8, leading=10, textColor=_MUTED)
        self.note_style = ParagraphStyle(
            "note", fontName=self.regular, fontSize=8.5, leading=11, textColor=_FAIL,
            alignment=1)
        self.note_pages = self._notes_laid_out() if notes else []
        self.pages = self.frame_pages + len(self.note_pages)

    def draw(self) -> None:
        per_page = self.columns * self.rows
        for page in range(self.frame_pages):
            self._header()
            self._footer(page + 1)
            chunk = self.entries[page * per_page:(page + 1) * per_page]
            if not chunk:
                self._empty_note()
            for index, entry in enumerate(chunk):
                self._frame(entry, index)
            self.canvas.showPage()
        for offset, lines in enumerate(self.note_pages):
            self._header()
            self._footer(self.frame_pages + offset + 1)
            self._notes_page(lines)
            self.canvas.showPage()

    # -- notes: the reviewers' comments, by frame, after the frames ---------------------------
    def _note_paragraphs(self) -> list[Paragraph]:
        heading = ParagraphStyle("notes-heading", fontName=self.bold, fontSize=10, leading=14,
                                 textColor=_INK, spaceBefore=6)
        by_scene: dict[int | None, list[Note]] = {}
        for note in self.notes:
            by_scene.setdefault(note.scene_number, []).append(note)
        out: list[Paragraph] = []
        for scene in sorted(by_scene, key=lambda n: -1 if n is None else n):
            out.append(Paragraph(escape("The whole board" if scene is None
                                        else f"Scene {scene}"), heading))
            for note in by_scene[scene]:
                kind = "Changes requested: " if note.kind == "changes" else ""
                text = (f"<b>{escape(note.author)}</b>, {escape(_when(note.created_at))}: "
                        f"{escape(kind)}{escape(note.text)}")
                out.append(Paragraph(text, self.body_style))
        return out

    def _notes_laid_out(self) -> list[list[Paragraph]]:
        """The notes in page-sized groups."""
        width, height = _PAGE
        room = height - 2 * _MARGIN - _HEADER - _FOOTER - 24
        pages: list[list[Paragraph]] = []
        used = room + 1.0
        for paragraph in self._note_paragraphs():
            _, tall = paragraph.wrap(width - 2 * _MARGIN, room)
            if used + tall + 4 > room:
                pages.append([])
                used = 0.0
            pages[-1].append(paragraph)
            used += tall + 4
        return pages

    def _notes_page(self, paragraphs: list[Paragraph]) -> None:
        c = self.canvas
        width, height = _PAGE
        top = height - _MARGIN - _HEADER - 10
        c.setFont(self.bold, 12)
        c.setFillColor(_INK)
        c.drawString(_MARGIN, top - 4, "Notes")
        y = top - 20
        for paragraph in paragraphs:
            _, tall = paragraph.wrap(width - 2 * _MARGIN, y)
            paragraph.drawOn(c, _MARGIN, y - tall)
            y -= tall + 4

    def _header(self) -> None:
        c, job = self.canvas, self.job
        width, height = _PAGE
        top = height - _MARGIN
        status_width = 210.0
        title = _fit_paragraph(job.prompt or f"Storyboard #{job.job_id}", self.title_style,
                               width - 2 * _MARGIN - status_width - 16, 36)
        _, title_height = title.wrap(width - 2 * _MARGIN - status_width - 16, 36)
        title.drawOn(c, _MARGIN, top - title_height)

        params = job.parameters or {}
        seconds = sum(e.scene.duration for e in self.entries) or params.get("duration")
        facts = [f"Storyboard #{job.job_id}", f"{len(self.entries)} scenes"]
        if seconds:
            facts.append(f"{float(seconds):g} s")  # type: ignore[arg-type]
        facts += [str(params[k]) for k in ("style", "aspect_ratio") if params.get(k)]
        if params.get("seed") is not None:
            facts.append(f"seed {params['seed']}")
        facts.append(f"created {_when(job.created_at)}")
        c.setFont(self.regular, 8.5)
        c.setFillColor(_MUTED)
        c.drawString(_MARGIN, top - _HEADER + 14, "  \u00b7  ".join(facts))

        # Status and approval, right-aligned: what a reviewer looks for first.
        right = width - _MARGIN
        status = _STATUS_LABELS.get(job.status, job.status)
        c.setFont(self.bold, 10)
        colour: Color = _OK if job.approved else _FAIL if job.status == "failed" else _INK
        c.setFillColor(colour)
        if job.approved:
            c.drawRightString(right, top - 11, "Approved")
            c.setFont(self.regular, 8.5)
            c.setFillColor(_MUTED)
            who = f"by {job.approved_by}, " if job.approved_by else ""
            c.drawRightString(right, top - 24, f"{who}{_when(job.approved_at)}"[:60])
        else:
            c.drawRightString(right, top - 11, status)
            c.setFont(self.regular, 8.5)
            c.setFillColor(_MUTED)
            note = "Awaiting approval" if job.status == "storyboard_ready" else ""
            if job.status == "failed" and job.error_message:
                note = job.error_message[:60]
            c.drawRightString(right, top - 24, note)

        c.setStrokeColor(_ACCENT)
        c.setLineWidth(1.5)
        c.line(_MARGIN, top - _HEADER + 4, width - _MARGIN, top - _HEADER + 4)

    def _footer(self, page: int) -> None:
        c = self.canvas
        width, _ = _PAGE
        c.setFont(self.regular, 8)
        c.setFillColor(_MUTED)
        c.drawString(_MARGIN, _MARGIN - 6,
                     f"Storyboard #{self.job.job_id}  \u00b7  exported {_when(self.exported)}")
        c.drawRightString(width - _MARGIN, _MARGIN - 6, f"Page {page} of {self.pages}")

    def _empty_note(self) -> None:
        c = self.canvas
        width, height = _PAGE
        c.setFont(self.regular, 11)
        c.setFillColor(_MUTED)
        message = self.job.error_message or "No scenes have been planned yet."
        c.drawCentredString(width / 2, height / 2, message[:120])

    def _cell(self, index: int) -> tuple[float, float, float, float]:
        """x, y (bottom-left), width and height of grid cell ``index`` on the page."""
        width, height = _PAGE
        grid_top = height - _MARGIN - _HEADER - 8
        grid_bottom = _MARGIN + _FOOTER
        cell_w = (width - 2 * _MARGIN - (self.columns - 1) * _GUTTER) / self.columns
        cell_h = (grid_top - grid_bottom - (self.rows - 1) * _GUTTER) / self.rows
        column, row = index % self.columns, index // self.columns
        x = _MARGIN + column * (cell_w + _GUTTER)
        y = grid_top - (row + 1) * cell_h - row * _GUTTER
        return x, y, cell_w, cell_h

    def _frame(self, entry: StoryboardEntry, index: int) -> None:
        c = self.canvas
        x, y, cell_w, cell_h = self._cell(index)
        ratio = _ratio(self.aspect_ratio)
        box_h = min(cell_w / ratio, cell_h - _CAPTION)
        box_w = box_h * ratio
        box_x, box_y = x, y + cell_h - box_h

        image = _image_for(entry, self.media_dir)
        if image is not None:
            c.drawImage(ImageReader(image), box_x, box_y, box_w, box_h,
                        preserveAspectRatio=True, anchor="c")
            c.setStrokeColor(_RULE)
            c.setLineWidth(0.75)
            c.rect(box_x, box_y, box_w, box_h, stroke=1, fill=0)
        else:
            self._placeholder(entry, box_x, box_y, box_w, box_h)

        scene = entry.scene
        total = len(self.entries)
        label_y = box_y - 13
        c.setFont(self.bold, 9.5)
        c.setFillColor(_INK)
        c.drawString(x, label_y, f"Scene {scene.scene_number}")
        c.setFont(self.regular, 9)
        c.setFillColor(_MUTED)
        length = f"{scene.duration:g} s"
        if entry.versions:
            earlier = len(entry.versions)
            length = f"{earlier} earlier version{'s' if earlier != 1 else ''}  \u00b7  {length}"
        c.drawRightString(x + box_w, label_y, length)
        # The beat on the left, the shot as an artist notes it on the right (MCU · LOW · ...).
        shot = shot_line(scene.shot_size, scene.camera_angle, scene.camera_movement)
        c.setFont(self.regular, 7.5)
        shot_w = c.stringWidth(shot, self.regular, 7.5)
        c.setFont(self.bold, 7.5)
        c.setFillColor(_ACCENT)
        beat = _fit_line(beat_label(scene, total).upper(), self.bold, 7.5,
                         box_w - shot_w - 8, c)
        c.drawString(x, label_y - 12, beat)
        if shot:
            c.setFont(self.regular, 7.5)
            c.setFillColor(_MUTED)
            c.drawRightString(x + box_w, label_y - 12, shot)

        text_top = label_y - 18
        room = text_top - y
        dialogue = None
        if scene.dialogue:
            # The dialogue gets up to three lines below the description; the description the rest.
            dialogue = _fit_paragraph(f"\u201c{scene.dialogue}\u201d", self.dialogue_style,
                                      box_w, min(room / 2, 3 * self.dialogue_style.leading))
            room -= dialogue.wrap(box_w, room)[1] + 3
        description = _fit_paragraph(scene.description, self.body_style, box_w, room)
        _, used = description.wrap(box_w, room)
        description.drawOn(c, x, text_top - used)
        if dialogue is not None:
            _, said = dialogue.wrap(box_w, room)
            dialogue.drawOn(c, x, text_top - used - 3 - said)

    def _placeholder(self, entry: StoryboardEntry, x: float, y: float, w: float, h: float) -> None:
        c = self.canvas
        failed = entry.generation_status == "failed"
        c.setFillColor(_FAIL_FILL if failed else _EMPTY_FILL)
        c.setStrokeColor(_FAIL if failed else _RULE)
        c.setLineWidth(0.75)
        c.setDash(3, 2)
        c.rect(x, y, w, h, stroke=1, fill=1)
        c.setDash()
        heading = "Image failed" if failed else "No image"
        if failed:
            reason = entry.error
        elif entry.image_url:  # the job says there is one, but its file is gone or not ours
            reason = "Image file not found"
        else:
            reason = _SCENE_STATES.get(entry.generation_status, entry.generation_status)
        c.setFont(self.bold, 10)
        c.setFillColor(_FAIL if failed else _MUTED)
        c.drawCentredString(x + w / 2, y + h / 2 + 8, heading)
        note = _fit_paragraph(reason or "no reason given", self.note_style, w - 16, h / 2 - 8)
        _, used = note.wrap(w - 16, h / 2 - 8)
        note.drawOn(c, x + 8, y + h / 2 - 4 - used)


def build_pdf(job: JobResponse, media_dir: Path, notes: Sequence[Note] = ()) -> bytes:
    """A printable storyboard sheet for ``job``: landscape A4, frames in a grid, page numbers,
    then the reviewers' ``notes`` (comments and change requests) by frame.

    Images are read from the files behind the job's ``/media/...`` URLs under ``media_dir``;
    a scene without one (failed, pending, or its file gone) gets a placeholder with the reason.
    """
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=_PAGE, pageCompression=1)
    canvas.setTitle(job.prompt or f"Storyboard #{job.job_id}")
    canvas.setSubject(f"Storyboard #{job.job_id}")
    canvas.setCreator("storyboard")
    canvas.setAuthor("Storyboard")
    _Sheet(canvas, job, media_dir, notes).draw()
    canvas.save()
    return buffer.getvalue()


def zip_entry_name(entry: StoryboardEntry, path: Path) -> str:
    """The name of a scene's image inside the ZIP: ``scene-01.png`` (its real extension)."""
    return f"scene-{entry.scene.scene_number:02d}{path.suffix.lower()}"


def _zip_info(name: str, moment: datetime, compress: int) -> zipfile.ZipInfo:
    # A fixed timestamp (the job's) makes the same job give the same bytes.
    info = zipfile.ZipInfo(name, date_time=moment.timetuple()[:6])
    info.compress_type = compress
    info.external_attr = 0o644 << 16
    return info


def build_zip(job: JobResponse, media_dir: Path) -> bytes:
    """A ZIP of the job: the current image of each scene, ``storyboard.json``, ``index.html``,
    the shot list ``shotlist.csv`` and, when this version was rendered, ``animatic.mp4``.

    Scenes without an image file are left out of the images but stay in the JSON and the sheet.
    """
    moment = max(job.updated_at, datetime(1980, 1, 1, tzinfo=job.updated_at.tzinfo))
    entries: Sequence[StoryboardEntry] = sorted(
        job.storyboard or [], key=lambda e: e.scene.scene_number)
    buffer = io.BytesIO()
    sources: list[str | None] = []
    with zipfile.ZipFile(buffer, "w") as archive:
        for entry in entries:
            path = path_for_url(media_dir, entry.image_url) if entry.image_url else None
            if path is None:
                sources.append(None)
                continue
            name = zip_entry_name(entry, path)
            # Images are already compressed; deflating them again only costs time.
            archive.writestr(_zip_info(name, moment, zipfile.ZIP_STORED), path.read_bytes())
            sources.append(name)
        archive.writestr(_zip_info("storyboard.json", moment, zipfile.ZIP_DEFLATED),
                         job.model_dump_json(indent=2))
        title = job.prompt or f"Storyboard #{job.job_id}"
        sheet = render_contact_sheet(title, entries, sources)
        archive.writestr(_zip_info("index.html", moment, zipfile.ZIP_DEFLATED), sheet)
        archive.writestr(_zip_info("shotlist.csv", moment, zipfile.ZIP_DEFLATED),
                         build_shot_list(job, media_dir).encode("utf-8"))
        animatic = rendered_animatic(job, media_dir)
        if animatic is not None:
            archive.writestr(_zip_info("animatic.mp4", moment, zipfile.ZIP_STORED),
                             animatic.read_bytes())
    return buffer.getvalue()
