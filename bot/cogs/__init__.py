"""One cog per user-facing area; each is a thin adapter over ``bot.logic`` and ``bot.views``."""
