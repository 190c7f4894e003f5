"""What users press: the persistent buttons and the "what was it?" menu under a result.

The custom ids carry the result row id, and ``register`` adds these classes with ``bot.add_dynamic_items``, so
buttons on old replies keep working after a restart. The components hold no logic: a press goes to the
handlers registered for the pressing client (``register``), whatever owns them.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import discord

from ser_core import EMOTIONS

from .embeds import emoji

FEEDBACK_PREFIX = "ser:fb"
#: The buttons under a stored result, in order.
FEEDBACK_ACTIONS = ("right", "wrong", "keep", "rerun", "transcript")


@dataclass(frozen=True)
class FeedbackHandlers:
    """What a press does: ``on_button(interaction, action, row_id)`` and ``on_true_label(interaction, row_id,
    label)``."""

    on_button: Callable[[discord.Interaction, str, int], Awaitable[None]]
    on_true_label: Callable[[discord.Interaction, int, str], Awaitable[None]]


# Per client: discord.py builds a dynamic item from its class alone (``from_custom_id``), and several bots may
# share one process (the tests' shards), so the handlers are found through the client that was pressed.
_HANDLERS: weakref.WeakKeyDictionary[discord.Client, FeedbackHandlers] = weakref.WeakKeyDictionary()


def register(client: discord.Client, handlers: FeedbackHandlers) -> None:
    """Route presses on ``client`` to ``handlers`` (and listen for the persistent components)."""
    _HANDLERS[client] = handlers
    client.add_dynamic_items(FeedbackButton, TrueLabelSelect)


def unregister(client: discord.Client) -> None:
    client.remove_dynamic_items(FeedbackButton, TrueLabelSelect)
    _HANDLERS.pop(client, None)


def _handlers(interaction: discord.Interaction) -> FeedbackHandlers | None:
    return _HANDLERS.get(interaction.client)


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
        handlers = _handlers(interaction)
        if handlers is None:
            return await _unavailable(interaction)
        await handlers.on_button(interaction, self.action, self.row_id)


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
        handlers = _handlers(interaction)
        if handlers is None:
            return await _unavailable(interaction)
        values = self.item.values
        await handlers.on_true_label(interaction, self.row_id, values[0] if values else "")


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
