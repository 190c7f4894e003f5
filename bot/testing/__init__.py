"""What tests, the demo and the benchmark use to run the real bot offline: the loopback fake Discord
(``fakediscord``) and a few real voices (``voices/``, credited in ``voices/CREDITS.md``).

Shipped with the package (like ``redbot.pytest`` or ``audformat.testing``) so that ``ser-bot --demo`` and the
benchmark work from an installed copy; nothing in the running bot imports it unless pointed at a fake.
"""
