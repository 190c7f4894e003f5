"""What users see: the picture of one result (``render_note``, Pillow) and the stats chart (``render_chart``,
matplotlib). Both are CPU-bound and run in a worker, never on the event loop.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from ser_core import Prediction, Transcript

from ..logic import Stats
from .embeds import COLOURS, pct, stretches


def render_chart(stats: Stats, *, title: str) -> bytes:
    """Stacked bars of detections per day and emotion → PNG bytes. CPU-bound: call from an executor."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # A bare Figure (no pyplot) holds no global state, so it is safe in worker threads.
    fig = Figure(figsize=(8, 3.6), dpi=100)
    ax = fig.add_subplot()
    x = list(range(len(stats.days)))
    bottom = [0] * len(x)
    for label, values in stats.per_day.items():
        if not any(values):
            continue
        colour = f"#{COLOURS.get(label, 0x5865F2):06x}"
        ax.bar(x, values, bottom=bottom, label=label, color=colour, width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(x) // 10)
    ax.set_xticks(x[::step], [d.strftime("%m-%d") for d in stats.days][::step])
    ax.set_ylabel("notes")
    ax.set_title(title, parse_math=False)  # a display name may hold "$": text, never mathtext
    if stats.total:
        ax.legend(loc="upper left", fontsize="small", ncols=4)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


#: The picture's card: Discord's dark surface with light text reads on both the dark and the light theme.
CARD_BG, CARD_FG, CARD_MUTED = "#2B2D31", "#F2F3F5", "#B5BAC1"
NOTE_PICTURE = "emotion.png"


PICTURE_SIZE = (640, 220)


@functools.lru_cache(maxsize=8)
def _font(size: int):
    """DejaVu Sans (shipped with matplotlib), else Pillow's own scalable font."""
    from PIL import ImageFont

    try:
        import matplotlib

        return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)
    except (ImportError, OSError):
        return ImageFont.load_default(size=size)


def _rgb(label: str) -> tuple[int, int, int]:
    c = COLOURS.get(label, 0x5865F2)
    return (c >> 16, (c >> 8) & 0xFF, c & 0xFF)


def render_note(pred: Prediction, transcript: Transcript | None = None) -> bytes:
    """The picture of one result → PNG bytes (640 × 220 px, about 5–15 kB). Call it from a worker.

    With a timeline: the note's waveform (``pred.envelope``), each bar coloured by the emotion of the
    timeline window nearest to it, with a legend and a seconds axis; with a ``transcript``, each stretch of
    one emotion is labelled with the words said in it. Without a timeline (notes under 6 s): the
    confidence of every class as bars. Drawn with Pillow, whose drawing runs in C: about 3 ms, where
    matplotlib took 40 ms of mostly Python, holding the GIL against the event loop (loop lag 4 → 90 ms).
    """
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = PICTURE_SIZE
    img = Image.new("RGB", (w, h), CARD_BG)
    draw = ImageDraw.Draw(img)
    top, p1 = pred.ranked[0]
    env = pred.envelope
    left, right = 14, w - 14
    if pred.timeline and env is not None and env.size:
        title = f"{top} {pct(p1)} · the note over time"
        mid, half = 112, 66
        t = (np.arange(env.size) + 0.5) * pred.duration_s / env.size
        centres = np.array([(seg.start_s + seg.end_s) / 2 for seg in pred.timeline])
        nearest = np.abs(t[:, None] - centres[None, :]).argmin(axis=1)
        labels = [pred.timeline[int(i)].label for i in nearest]
        step = (right - left) / env.size
        for i, (level, lab) in enumerate(zip(np.maximum(env, 0.03), labels, strict=True)):
            x = left + (i + 0.5) * step
            draw.line([(x, mid - level * half), (x, mid + level * half)], fill=_rgb(lab), width=2)
        # seconds axis: about 8 ticks at 1, 2, 5, 10, ... s
        draw.line([(left, 186), (right, 186)], fill=CARD_MUTED)
        tick = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300) if pred.duration_s / s <= 9)
        for k in range(int(pred.duration_s / tick) + 1):
            x = left + k * tick / pred.duration_s * (right - left)
            draw.line([(x, 186), (x, 190)], fill=CARD_MUTED)
            draw.text((x, 192), f"{k * tick:g}", fill=CARD_MUTED, font=_font(11), anchor="mt")
        draw.text((right, 206), "seconds", fill=CARD_MUTED, font=_font(11), anchor="rt")
        if transcript is not None:
            _label_stretches(draw, pred, transcript, left, right)
        # legend, right-aligned on the title's line
        x = right
        for lab in reversed(list(dict.fromkeys(labels))):
            x -= draw.textlength(lab, font=_font(12))
            draw.text((x, 14), lab, fill=CARD_FG, font=_font(12), anchor="lm")
            x -= 18
            draw.rectangle([x, 9, x + 12, 19], fill=_rgb(lab))
            x -= 14
    else:
        title = f"{top} {pct(p1)} · confidence of every emotion"
        bar_left, bar_right = 100, right - 44
        for row, (lab, p) in enumerate(pred.ranked):
            y = 46 + row * 21
            draw.text((bar_left - 8, y), lab, fill=CARD_FG, font=_font(13), anchor="rm")
            end = bar_left + max(p, 0.004) * (bar_right - bar_left)
            draw.rectangle([bar_left, y - 7, end, y + 7], fill=_rgb(lab))
            draw.text((end + 6, y), pct(p), fill=CARD_FG, font=_font(12), anchor="lm")
    draw.text((left, 14), title, fill=CARD_FG, font=_font(15), anchor="lm")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _label_stretches(draw, pred: Prediction, t: Transcript, left: int, right: int) -> None:
    """The words of each stretch of one emotion, under the title, cut to the stretch's width."""
    runs: list[list] = []
    for seg in pred.timeline:
        if runs and runs[-1][2] == seg.label:
            runs[-1][1] = seg.end_s
        else:
            runs.append([seg.start_s, seg.end_s, seg.label])
    font = _font(11)
    scale = (right - left) / max(pred.duration_s, 1e-6)
    bounds = stretches([(a, b) for a, b, _ in runs])
    for (a, b), (_, _, lab) in zip(bounds, runs, strict=True):
        words = t.between(a, b)
        x0, x1 = left + a * scale + 2, left + b * scale - 2
        if not words or x1 - x0 < 24:
            continue
        while words and draw.textlength(words, font=font) > x1 - x0:
            words = words[:-2] + "…" if len(words) > 2 else ""
        draw.line([(x0, 40), (x1, 40)], fill=_rgb(lab), width=2)
        draw.text((x0, 36), words, fill=CARD_FG, font=font, anchor="ls")
