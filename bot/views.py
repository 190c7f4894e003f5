"""What users see: the result embed, history, stats and model card embeds, and the stats chart.

Pure functions of their inputs. ``render_chart`` is CPU-bound (matplotlib, Agg) and is run in the bot's
executor, never on the event loop.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence

import discord

from ser_core import EMOTIONS, Prediction

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


def profile_note(*, adapted: bool, n: int, needed: int) -> str:
    """The footer part saying whether the speaker's voice profile was used: ``n`` notes folded in so far."""
    if adapted:
        return f"voice profile: in use ({n} notes)"
    return f"voice profile: learning ({min(n, needed)}/{needed} notes)"


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
            f"Uncertain: **{top}** or **{second}** ({pct(p1)} vs {pct(p2)}); "
            "the model cannot tell these apart well here."
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


def error_text(reason: str) -> str:
    """A refusal. The file name is left out on purpose: a name like ``angry.ogg`` would read as a result."""
    return f"⚠️ I couldn't analyse this file: {reason}"


def history_embed(rows: Sequence[Detection], *, who: str) -> discord.Embed:
    embed = discord.Embed(title=f"Latest detections — {who}", colour=0x5865F2)
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
    embed = discord.Embed(title=f"Emotions over the last {days} days — {who}", colour=0x5865F2)
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
    from ser_core.workflow import score_summary

    embed = discord.Embed(title=f"Model {version}", colour=0x5865F2)
    summary = score_summary(card)
    if summary["off_corpus"]:
        rows = [
            f"**{r['corpus']}** (trained on {' + '.join(r['trained_on'])}): {r['accuracy']:.0%} "
            f"(UAR {r['uar']:.0%}, {r['n_classes']} classes)"
            for r in summary["off_corpus"]
        ]
        embed.add_field(name="On corpora it never heard", value=_short(rows), inline=False)
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
    ax.set_title(title)
    if stats.total:
        ax.legend(loc="upper left", fontsize="small", ncols=4)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


#: The picture's card: Discord's dark surface with light text reads on both the dark and the light theme.
CARD_BG, CARD_FG, CARD_MUTED = "#2B2D31", "#F2F3F5", "#B5BAC1"
NOTE_PICTURE = "emotion.png"


def render_note(pred: Prediction) -> bytes:
    """The picture of one result → PNG bytes (about 20–40 kB, 640 × 220 px). CPU-bound: call from a worker.

    With a timeline: the note's waveform (``pred.envelope``), each bar coloured by the emotion of the
    timeline window around it. Without one (notes under 6 s): the confidence of every class as bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    fig = Figure(figsize=(6.4, 2.2), dpi=100, facecolor=CARD_BG)
    ax = fig.add_subplot(facecolor=CARD_BG)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set_color(CARD_MUTED)
    ax.tick_params(colors=CARD_MUTED, labelsize=8)
    top, p1 = pred.ranked[0]
    env = pred.envelope
    if pred.timeline and env is not None and env.size:
        t = (np.arange(env.size) + 0.5) * pred.duration_s / env.size
        centres = np.array([(s.start_s + s.end_s) / 2 for s in pred.timeline])
        labels = [pred.timeline[int(np.argmin(np.abs(centres - x)))].label for x in t]
        colours = [f"#{COLOURS.get(lab, 0x5865F2):06x}" for lab in labels]
        height = np.maximum(env, 0.02)
        # One LineCollection, not 256 bar patches: a third of the drawing time.
        ax.vlines(t, -height, height, colors=colours, linewidth=1.6)
        ax.set_xlim(0, pred.duration_s)
        ax.set_ylim(-1.05, 1.05)
        ax.set_yticks([])
        ax.set_xlabel("seconds", color=CARD_MUTED, fontsize=8)
        seen = list(dict.fromkeys(labels))
        handles = [Patch(color=f"#{COLOURS.get(lab, 0x5865F2):06x}", label=lab) for lab in seen]
        legend = ax.legend(
            handles=handles,
            loc="lower right",
            bbox_to_anchor=(1.0, 1.0),  # on the title's line, clear of the waveform
            fontsize=8,
            ncols=min(4, len(seen)),
            frameon=False,
            borderaxespad=0.1,
        )
        for text in legend.get_texts():
            text.set_color(CARD_FG)
        title = f"{top} {pct(p1)} · the note over time"
    else:
        ranked = pred.ranked[::-1]  # most likely at the top
        y = np.arange(len(ranked))
        ax.barh(y, [p for _, p in ranked], color=[f"#{COLOURS.get(lab, 0x5865F2):06x}" for lab, _ in ranked])
        ax.set_yticks(y, [lab for lab, _ in ranked], color=CARD_FG, fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1], ["0", "25", "50", "75", "100 %"])
        for yi, (_, p) in zip(y, ranked, strict=True):
            ax.text(min(p + 0.01, 0.93), yi, pct(p), va="center", color=CARD_FG, fontsize=7)
        title = f"{top} {pct(p1)} · confidence of every emotion"
    ax.set_title(title, color=CARD_FG, fontsize=10, loc="left")
    # Fixed margins instead of tight_layout, which draws the figure twice.
    timeline = bool(pred.timeline and env is not None and env.size)
    fig.subplots_adjust(
        left=0.02 if timeline else 0.13, right=0.98 if timeline else 0.95, top=0.85, bottom=0.2
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=CARD_BG)
    return buf.getvalue()


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
    template=rf"{FEEDBACK_PREFIX}:(?P<action>right|wrong|keep|rerun):(?P<row>[0-9]{{1,19}})",
):
    """✅ Right / ❌ Wrong / 💾 Keep my clip for training / 🔁 Re-run, for the result in row ``row_id``."""

    LOOK = {
        "right": ("Right", "✅", discord.ButtonStyle.success),
        "wrong": ("Wrong", "❌", discord.ButtonStyle.danger),
        "keep": ("Keep my clip for training", "💾", discord.ButtonStyle.secondary),
        "rerun": ("Re-run", "🔁", discord.ButtonStyle.secondary),
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


def feedback_view(row_id: int) -> discord.ui.View:
    """The buttons under a result."""
    view = discord.ui.View(timeout=None)
    for action in ("right", "wrong", "keep", "rerun"):
        view.add_item(FeedbackButton(action, row_id))
    return view


def label_view(row_id: int) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(TrueLabelSelect(row_id))
    return view
