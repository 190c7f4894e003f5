"""The bot process of the burst benchmark: ``python -m bot``'s own ``run(settings)`` plus an event-loop lag
monitor in the same loop. Settings come from the environment. On exit (SIGTERM) it writes JSON to argv[1]:
``lag``: [[perf_counter s, overshoot ms], ...] of ``asyncio.sleep(0.01)``; ``maxrss_kib``: peak resident memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import resource
import sys
import time

from bot.__main__ import run
from bot.settings import Settings

INTERVAL_S = 0.010


async def monitor(samples: list[tuple[float, float]]) -> None:
    """Append (time, ms the sleep overshot) every ``INTERVAL_S``: how long the loop could not run a ready task."""
    while True:
        t0 = time.perf_counter()
        await asyncio.sleep(INTERVAL_S)
        t1 = time.perf_counter()
        samples.append((t1, (t1 - t0 - INTERVAL_S) * 1000))


async def main(out: str) -> int:
    samples: list[tuple[float, float]] = []
    task = asyncio.create_task(monitor(samples))
    code = await run(Settings.from_env())
    task.cancel()
    stats = {"lag": samples, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "exit": code}
    with open(out, "w") as f:
        json.dump(stats, f)
    return code


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main(sys.argv[1])))
