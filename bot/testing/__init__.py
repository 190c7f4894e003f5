"""What tests, the demo and the benchmark use to run the real bot offline: the loopback fake Discord
(``fakediscord``), a few real voices (``voices/``, credited in ``voices/CREDITS.md``) and a synthetic one
(``synthetic``).

Shipped with the package (like ``redbot.pytest`` or ``audformat.testing``) so that ``ser-bot --demo`` and the
benchmark work from an installed copy; nothing in the running bot imports it unless pointed at a fake.
"""
