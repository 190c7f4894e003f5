"""The speech-emotion Discord bot built on ``ser_core``. Run it with ``ser-bot`` (or ``python -m bot``)."""

__all__ = ["EmotionBot", "Settings", "SettingsError"]


def __getattr__(name: str):
    # Lazy: ``python -m bot`` must be able to report a bad setting before importing discord and numpy.
    if name == "EmotionBot":
        from .bot import EmotionBot

        return EmotionBot
    if name in ("Settings", "SettingsError"):
        from . import settings

        return getattr(settings, name)
    raise AttributeError(name)
