"""What users read: the result embed and its transcript field, history, stats and model card embeds, and the
short texts around them (refusals, calibration). Pure functions of their inputs.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

import discord

from ser_core import Prediction, Transcript

from ..logic import Stats
from ..storage import Detection

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
