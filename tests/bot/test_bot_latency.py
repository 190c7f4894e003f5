"""Latency from a voice message's dispatch to the bot's reply on the loopback fake (printed; run with -s)."""

from __future__ import annotations

import statistics
import time

import pytest
from bot_helpers import first_emotion

pytestmark = pytest.mark.timeout(60)
N = 20


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


async def test_latency_sequential_and_burst(fake, bot, voice_ogg):
    sequential = []
    for _ in range(N):
        start = len(fake.records)
        att = fake.voice_attachment(voice_ogg, 2.5)
        t0 = time.perf_counter()  # the clock Record.at uses
        note = await fake.send_message(attachments=[att])
        reply = await fake.wait_for(lambda r, i=int(note["id"]): r.reply_to == i, timeout=10, start=start)
        sequential.append(reply.at - t0)
        assert first_emotion(reply.text)

    # A burst from N different people (the per-user rate limit does not apply across users).
    start = len(fake.records)
    t0 = time.perf_counter()
    notes = []
    for i in range(N):
        author = fake.user(fake.new_id(), f"user{i}")
        notes.append(
            await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=author)
        )
    replies = [
        await fake.wait_for(lambda r, i=int(n["id"]): r.reply_to == i, timeout=30, start=start) for n in notes
    ]
    burst = [r.at - t0 for r in replies]
    assert all(first_emotion(r.text) for r in replies), "every note of the burst is answered with a result"

    med, p95 = summary(sequential)
    bmed, bp95 = summary(burst)
    print(f"\nlatency over {N} sequential voice notes: median {med * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    print(
        f"burst of {N} notes at once: median {bmed * 1000:.0f} ms, p95 {bp95 * 1000:.0f} ms after the burst began"
    )
    assert p95 < 3.0
