"""What users see: the result embed, history, stats and model card embeds, and the stats chart.

Pure functions of their inputs. ``render_chart`` is CPU-bound (matplotlib, Agg) and is run in the bot's
executor, never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Sequence
from pathlib import Path

import discord

from ser_core import EMOTIONS, Prediction, Transcript

from .logic import Stats
from .storage import Detection

EMOJI = {
    "neutral": "😐",
    "calm": "😌",
    "happy": "😄",
    "sad": "😢",
    "angry": "😠",
    "fearful": "😨",
    "disgust": "🤢",
    "surprised": "😲",
}
COLOURS = {
    "neutral": 0x95A5A6,
    "calm": 0x1ABC9C,
    "happy": 0xF1C40F,
    "sad": 0x3498DB,
    "angry": 0xE74C3C,
    "fearful": 0x9B59B6,
    "disgust": 0x2ECC71,
    "surprised": 0xE67E22,
}
BAR_WIDTH = 16
MAX_TIMELINE_LINES = 12


def emoji(label: str) -> str:
    return EMOJI.get(label, "🎙️")


def pct(p: float) -> str:
    return f"{round(p * 100):d} %"


def bar(p: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, p)) * width)
    return "█" * filled + "░" * (width - filled)


def probability_bars(pred: Prediction) -> str:
    """One line per class, most likely first: ``label  ████░░  71 %`` in a code block."""
    width = max(len(lab) for lab in pred.probabilities)
    lines = [f"{lab:<{width}} {bar(p)} {pct(p):>5}" for lab, p in pred.ranked]
    return "```\n" + "\n".join(lines) + "\n```"


def timeline_lines(pred: Prediction, max_lines: int = MAX_TIMELINE_LINES) -> list[str]:
    """Consecutive windows with the same top label merged: ``0.0–4.5 s  😠 angry``."""
    runs: list[list] = []  # [start, end, label, [confidences]]
    for seg in pred.timeline:
        conf = seg.probabilities.get(seg.label, 0.0)
        if runs and runs[-1][2] == seg.label:
            runs[-1][1] = seg.end_s
            runs[-1][3].append(conf)
        else:
            runs.append([seg.start_s, seg.end_s, seg.label, [conf]])
    lines = [f"`{a:5.1f}–{b:5.1f} s` {emoji(lab)} {lab} ({pct(sum(c) / len(c))})" for a, b, lab, c in runs]
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [f"… and {len(lines) - max_lines + 1} more changes"]
    return lines


def adaptation_note(adaptation: str) -> str:
    """The footer part saying what of the speaker's voice the answer used: ``adaptation: none`` (a new voice,
    answered as anyone's), ``adaptation: neutral reference 3``, ``adaptation: profile 12 notes`` or both."""
    return f"adaptation: {adaptation}"


#: Sentences for ``/emotion calibrate``: plain, emotionless, a few seconds each, per language.
CALIBRATION_SENTENCES: dict[str, tuple[str, ...]] = {
    "English": (
        "The train to the city leaves at half past nine from platform two.",
        "I put the blue folder on the shelf next to the window.",
        "We usually buy bread and milk at the shop on the corner.",
    ),
    "Deutsch": (
        "Der Zug in die Stadt fährt um halb zehn von Gleis zwei.",
        "Ich habe den blauen Ordner auf das Regal neben dem Fenster gelegt.",
        "Brot und Milch kaufen wir meistens im Laden an der Ecke.",
    ),
    "Polski": (
        "Pociąg do miasta odjeżdża o wpół do dziesiątej z peronu drugiego.",
        "Położyłem niebieską teczkę na półce obok okna.",
        "Chleb i mleko kupujemy zwykle w sklepie na rogu.",
    ),
    "Français": (
        "Le train pour la ville part à neuf heures et demie du quai deux.",
        "J'ai posé le classeur bleu sur l'étagère à côté de la fenêtre.",
        "Nous achetons d'habitude le pain et le lait à l'épicerie du coin.",
    ),
    "Español": (
        "El tren a la ciudad sale a las nueve y media del andén dos.",
        "Dejé la carpeta azul en la estantería junto a la ventana.",
        "Solemos comprar el pan y la leche en la tienda de la esquina.",
    ),
}


def calibration_text(language: str, notes: int, *, kept: int, minutes: int) -> str:
    """What ``/emotion calibrate`` asks for: ``notes`` voice notes in an ordinary, relaxed voice."""
    lines = [
        f"Send me your next {notes} voice note{'s' if notes != 1 else ''} (here where I listen, or in a direct "
        f"message, within {minutes} minutes) in your **ordinary, relaxed voice**, a few seconds each. I keep only "
        "numbers computed from them (no audio) and use them as your reference: later notes are heard against "
        "your own voice, not against everyone's.",
        "Suggested sentences:",
        *(f"> {line}" for line in CALIBRATION_SENTENCES[language][:notes]),
    ]
    if kept:
        lines.append(
            f"You already have {kept} reference note{'s' if kept != 1 else ''}; these are added to them."
        )
    lines.append("`/emotion calibrate reset:True` starts again; `/emotion forget` deletes it all.")
    return "\n".join(lines)


def reference_text(k: int, left: int) -> str:
    """The reply to a note taken as a reference (it is not judged)."""
    head = (
        f"🎙️ Reference note recorded: you have {k} now. This note is your ordinary voice, so it is not judged."
    )
    if left:
        return head + f" Send {left} more in the same relaxed voice."
    return head + " Your next notes are heard against your own voice (the footer says so)."


def result_embed(
    pred: Prediction,
    *,
    filename: str | None = None,
    profile: str | None = None,
    rerun_of: str | None = None,
) -> discord.Embed:
    """The reply to one clip. The top emotion is the first emotion word (in the title); every class's
    probability follows as a bar."""
    top, p1 = pred.ranked[0]
    embed = discord.Embed(title=f"{emoji(top)} {top} ({pct(p1)})", colour=COLOURS.get(top, 0x5865F2))
    if pred.uncertain:
        second, p2 = pred.ranked[1]
        head = (
            f"Not sure: **{top}** or **{second}** ({pct(p1)} vs {pct(p2)}). "
            "Answers this unsure are wrong more often than right."
        )
    else:
        head = f"Sounds **{top}**."
    if pred.cut_short:
        head += (
            f"\n⚠️ The file was cut short: this is what its first {pred.duration_s:.1f} s sound like. "
            "Send it again for the whole note."
        )
    embed.description = head + "\n" + probability_bars(pred)
    if pred.timeline:
        value = "\n".join(timeline_lines(pred))
        embed.add_field(name="Timeline", value=value[:1024], inline=False)
    footer = f"{pred.duration_s:.1f} s · model {pred.model_version}"
    if rerun_of is not None:
        same = rerun_of == pred.model_version
        footer += (
            " (re-run with the same model)" if same else f" (re-run; previous answer by model {rerun_of})"
        )
    if filename:
        footer = f"{filename} · {footer}"
    if profile:
        footer = f"{footer} · {profile}"
    embed.set_footer(text=footer + " · an estimate from the voice, not a diagnosis")
    return embed


def result_text(embed: discord.Embed) -> str:
    """A plain-text rendering of an embed (the demo prints this)."""
    parts = [embed.title or "", embed.description or ""]
    parts += [f"{f.name}:\n{f.value}" for f in embed.fields]
    if embed.footer and embed.footer.text:
        parts.append(embed.footer.text)
    return "\n".join(p for p in parts if p)


# ---------------------------------------------------------------------------------------------- transcripts
TRANSCRIPT_FIELD = "📝 Transcript"
_TIMELINE_LINE = re.compile(r"^`\s*([0-9.]+)–\s*([0-9.]+) s`")


def transcript_heading(t: Transcript) -> str:
    """``📝 Transcript (English, detected)``; a pinned language says so."""
    how = "pinned for this server" if t.pinned else "detected"
    return f"{TRANSCRIPT_FIELD} ({t.language_name}, {how})"


def with_transcript(embed: discord.Embed, t: Transcript) -> discord.Embed:
    """A copy of a result embed with the transcript in: a field of its own (in pieces of 1024 characters, at
    most three), and each line of the timeline followed by the words said in that stretch."""
    out = discord.Embed.from_dict(embed.to_dict())
    fields = [f for f in out.fields if not f.name.startswith(TRANSCRIPT_FIELD)]
    out.clear_fields()
    for f in fields:
        value = f.value
        if f.name == "Timeline":
            value = _timeline_with_words(value, t)
        out.add_field(name=f.name, value=value, inline=f.inline)
    text = discord.utils.escape_markdown(t.text) if t.text else "*(no words heard)*"
    pieces = [text[i : i + 1024] for i in range(0, len(text), 1024)][:3]
    if len(text) > 3 * 1024:
        pieces[-1] = pieces[-1][:1023] + "…"
    for i, piece in enumerate(pieces):
        out.add_field(name=transcript_heading(t) if i == 0 else "… continued", value=piece, inline=False)
    return out


def _timeline_with_words(value: str, t: Transcript, limit: int = 1024) -> str:
    lines = [line.split(" — *", 1)[0] for line in value.split("\n")]  # words of an earlier transcript go
    value = "\n".join(lines)
    timed = [i for i, line in enumerate(lines) if _TIMELINE_LINE.match(line)]
    if not timed:
        return value
    room = max(0, (limit - len(value)) // len(timed) - 6)
    spans = []
    for i in timed:
        m = _TIMELINE_LINE.match(lines[i])
        assert m is not None
        spans.append((float(m.group(1)), float(m.group(2))))
    for i, (a, b) in zip(timed, stretches(spans), strict=True):
        words = t.between(a, b)
        if words and room > 1:
            words = words if len(words) <= room else words[: room - 1] + "…"
            lines[i] += f" — *{discord.utils.escape_markdown(words)}*"
    return "\n".join(lines)[:limit]


def stretches(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Consecutive (start, end) windows that overlap (the timeline's windows do) made into stretches that do
    not: each boundary in the middle of the overlap, so every word belongs to one stretch."""
    out = []
    for i, (a, b) in enumerate(spans):
        lo = a if i == 0 else (a + spans[i - 1][1]) / 2
        hi = b + 0.05 if i == len(spans) - 1 else (spans[i + 1][0] + b) / 2
        out.append((lo, max(lo, hi)))
    return out


def transcript_busy_field(embed: discord.Embed, text: str) -> discord.Embed:
    """A copy of ``embed`` saying in the transcript's place why it is not there (busy: press the button)."""
    out = discord.Embed.from_dict(embed.to_dict())
    out.add_field(name=TRANSCRIPT_FIELD, value=text, inline=False)
    return out


def error_text(reason: str) -> str:
    """A refusal. The file name is left out on purpose: a name like ``angry.ogg`` would read as a result."""
    return f"⚠️ I couldn't analyse this file: {reason}"


def history_embed(rows: Sequence[Detection], *, who: str) -> discord.Embed:
    embed = discord.Embed(title=f"Latest detections — {discord.utils.escape_markdown(who)}", colour=0x5865F2)
    if not rows:
        embed.description = "Nothing stored yet."
        return embed
    lines = []
    for r in rows:
        when = discord.utils.format_dt(dt.datetime.fromtimestamp(r.created_at, dt.timezone.utc), "R")
        link = ""
        if r.channel_id and r.message_id:
            where = r.guild_id or "@me"  # a direct message's link
            link = f" · [note](https://discord.com/channels/{where}/{r.channel_id}/{r.message_id})"
        lines.append(f"{emoji(r.label)} **{r.label}** {pct(r.confidence)} · <@{r.user_id}> · {when}{link}")
    embed.description = "\n".join(lines)[:4096]
    return embed


def stats_embed(stats: Stats, *, who: str, days: int, chart_name: str | None) -> discord.Embed:
    embed = discord.Embed(
        title=f"Emotions over the last {days} days — {discord.utils.escape_markdown(who)}", colour=0x5865F2
    )
    if stats.total == 0:
        embed.description = "No detections in this period."
        return embed
    width = max(len(lab) for lab in stats.counts)
    lines = [f"{lab:<{width}} {bar(n / stats.total)} {n:>4}" for lab, n in stats.counts.items()]
    embed.description = (
        f"{stats.total} notes, mean confidence {pct(stats.mean_confidence)}\n```\n"
        + "\n".join(lines)
        + "\n```"
    )
    if chart_name:
        embed.set_image(url=f"attachment://{chart_name}")
    return embed


def model_embed(card: dict, *, labels: Sequence[str], version: str) -> discord.Embed:
    """The model card: what to expect on a new voice (leave-one-corpus-out) next to the in-corpus scores, the
    data and its licences, classes, date."""
    from ser_core.card import score_summary

    embed = discord.Embed(title=f"Model {version}", colour=0x5865F2)
    summary = score_summary(card)
    if summary["off_corpus"]:
        rows = [
            f"**{r['corpus']}** (trained on {' + '.join(r['trained_on'])}): {r['accuracy']:.0%} "
            f"(UAR {r['uar']:.0%}, {r['n_classes']} classes"
            + ("" if r["ece"] is None else f"; percentages off by {r['ece'] * 100:.0f} points on average")
            + ")"
            for r in summary["off_corpus"]
        ]
        embed.add_field(name="On corpora it never heard", value=_short(rows), inline=False)
    if summary["adaptation"]:
        rows = [
            f"**{corpus}**: cold {_p(r.get('none'))}, after 3 calibration notes {_p(r.get('neutral-3'))}, "
            f"after 20 notes {_p(r.get('profile-20'))}"
            for corpus, r in summary["adaptation"].items()
        ]
        embed.add_field(
            name="After learning your voice (`/emotion calibrate`)", value=_short(rows), inline=False
        )
    if summary["inside"]:
        rows = [f"**{r['protocol']}** ({r['what']}): {r['accuracy']:.0%}" for r in summary["inside"]]
        embed.add_field(name="Inside its training corpora", value=_short(rows), inline=False)
    if not summary["off_corpus"] and not summary["inside"]:
        embed.add_field(name="Scores", value="not evaluated", inline=False)
    if summary["expect"]:
        embed.description = summary["expect"]
    data = card.get("data") or card.get("dataset") or "not recorded"
    if isinstance(data, dict):
        corpora = data.get("corpora") or {}
        data = [
            f"{v.get('title', k)}: {v.get('n_clips')} clips, {v.get('licence')}" for k, v in corpora.items()
        ] or f"{data.get('name', 'data')}: {data.get('n_clips')} clips"
    embed.add_field(name="Data", value=_short(data), inline=False)
    embed.add_field(name="Classes", value=", ".join(labels), inline=False)
    embed.add_field(
        name="Created", value=str(card.get("trained") or card.get("created", "unknown")), inline=True
    )
    if card.get("n_train"):
        embed.add_field(name="Training clips", value=str(card["n_train"]), inline=True)
    versions = card.get("versions")
    if isinstance(versions, dict):
        embed.set_footer(text=" · ".join(f"{k} {v}" for k, v in versions.items())[:2048])
    return embed


def _p(v: float | None) -> str:
    return "—" if v is None else f"{v:.0%}"


def _short(value, limit: int = 1000) -> str:
    if isinstance(value, dict):
        text = "\n".join(f"**{k}**: {_inline(v)}" for k, v in value.items())
    elif isinstance(value, list | tuple):
        text = "\n".join(f"• {_inline(v)}" for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _inline(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, dict):
        return ", ".join(f"{k}={_inline(x)}" for k, x in v.items())
    if isinstance(v, list | tuple):
        return ", ".join(_inline(x) for x in v)
    return str(v)


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


# ---------------------------------------------------------------------------------------------- feedback UI
# Persistent components: the custom ids carry the result row id, and the Feedback cog registers these
# classes with ``bot.add_dynamic_items``, so buttons on old replies keep working after a restart.
FEEDBACK_PREFIX = "ser:fb"


def _feedback_cog(interaction: discord.Interaction):
    return interaction.client.get_cog("Feedback")  # type: ignore[attr-defined]


async def _unavailable(interaction: discord.Interaction) -> None:
    await interaction.response.send_message("Feedback is not available right now.", ephemeral=True)


class FeedbackButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=rf"{FEEDBACK_PREFIX}:(?P<action>right|wrong|keep|rerun|transcript):(?P<row>[0-9]{{1,19}})",
):
    """✅ Right / ❌ Wrong / 💾 Keep my clip for training / 🔁 Re-run / 📝 Transcript, for the result in row
    ``row_id``."""

    LOOK = {
        "right": ("Right", "✅", discord.ButtonStyle.success),
        "wrong": ("Wrong", "❌", discord.ButtonStyle.danger),
        "keep": ("Keep my clip for training", "💾", discord.ButtonStyle.secondary),
        "rerun": ("Re-run", "🔁", discord.ButtonStyle.secondary),
        "transcript": ("Transcript", "📝", discord.ButtonStyle.secondary),
    }

    def __init__(self, action: str, row_id: int) -> None:
        label, emoji_, style = self.LOOK[action]
        super().__init__(
            discord.ui.Button(
                label=label, emoji=emoji_, style=style, custom_id=f"{FEEDBACK_PREFIX}:{action}:{int(row_id)}"
            )
        )
        self.action = action
        self.row_id = int(row_id)

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item, match: re.Match[str], /):
        return cls(match["action"], int(match["row"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _feedback_cog(interaction)
        if cog is None:
            return await _unavailable(interaction)
        await cog.on_button(interaction, self.action, self.row_id)


class TrueLabelSelect(
    discord.ui.DynamicItem[discord.ui.Select], template=rf"{FEEDBACK_PREFIX}:label:(?P<row>[0-9]{{1,19}})"
):
    """ "What was it?": one of the emotions, for the result in row ``row_id``."""

    def __init__(self, row_id: int) -> None:
        options = [discord.SelectOption(label=lab, value=lab, emoji=emoji(lab)) for lab in EMOTIONS]
        super().__init__(
            discord.ui.Select(
                placeholder="What did the note really sound like?",
                options=options,
                custom_id=f"{FEEDBACK_PREFIX}:label:{int(row_id)}",
                min_values=1,
                max_values=1,
            )
        )
        self.row_id = int(row_id)

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item, match: re.Match[str], /):
        return cls(int(match["row"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = _feedback_cog(interaction)
        if cog is None:
            return await _unavailable(interaction)
        values = self.item.values
        await cog.on_true_label(interaction, self.row_id, values[0] if values else "")


#: The buttons under a stored result, in order.
FEEDBACK_ACTIONS = ("right", "wrong", "keep", "rerun", "transcript")


def feedback_view(row_id: int) -> discord.ui.View:
    """The buttons under a result."""
    view = discord.ui.View(timeout=None)
    for action in FEEDBACK_ACTIONS:
        view.add_item(FeedbackButton(action, row_id))
    return view


def label_view(row_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(TrueLabelSelect(row_id))
    return view
