"""Plain logic, tested directly: attachment choice and pre-checks, rate limit, permissions, stats, worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import logic
from bot.worker import Busy, Closed, Worker


@dataclass
class Att:
    filename: str
    content_type: str | None = None
    size: int = 1000
    duration: float | None = None


@pytest.mark.parametrize(
    ("att", "audio"),
    [
        (Att("voice-message.ogg", "audio/ogg"), True),
        (Att("x.bin", "audio/mpeg"), True),
        (Att("talk.M4A"), True),
        (Att("talk.mp3", "application/octet-stream"), True),
        (Att("cat.png", "image/png"), False),
        (Att("notes.txt", "text/plain; charset=utf-8"), False),
        (Att("film.mp4", "video/mp4"), False),
        (Att("README"), False),
    ],
)
def test_is_audio(att, audio):
    assert logic.is_audio(att) is audio


def test_pick_audio_takes_the_first_audio_attachment():
    a, b = Att("a.png", "image/png"), Att("b.wav", "audio/wav")
    assert logic.pick_audio([a, b]) is b
    assert logic.pick_audio([a]) is None


def test_precheck_uses_metadata():
    assert logic.precheck(Att("a.ogg", size=10, duration=5.0), max_bytes=100, max_seconds=60) is None
    assert "limit is 60 s" in logic.precheck(
        Att("a.ogg", size=10, duration=61.0), max_bytes=100, max_seconds=60
    )
    too_big = logic.precheck(Att("a.ogg", size=30 * 2**20), max_bytes=25 * 2**20, max_seconds=60)
    assert "30.0 MB" in too_big and "25.0 MB" in too_big
    assert "empty" in logic.precheck(Att("a.ogg", size=0), max_bytes=100, max_seconds=60)


def test_rate_limiter_token_bucket():
    t = [0.0]
    rl = logic.RateLimiter(capacity=5, per=60.0, clock=lambda: t[0])
    assert [rl.hit(1) for _ in range(5)] == [0.0] * 5
    wait = rl.hit(1)
    assert wait == pytest.approx(12.0)  # one token per 12 s
    assert rl.hit(2) == 0.0  # other users are not affected
    t[0] = 12.0
    assert rl.hit(1) == 0.0
    assert rl.hit(1) > 0


@given(st.lists(st.floats(min_value=0, max_value=30), min_size=1, max_size=60))
def test_rate_limiter_never_allows_more_than_capacity_plus_refill(gaps):
    t = [0.0]
    rl = logic.RateLimiter(capacity=5, per=60.0, clock=lambda: t[0])
    allowed = 0
    for gap in gaps:
        t[0] += gap
        allowed += rl.hit(7) == 0.0
    assert allowed <= 5 + t[0] / 12.0 + 1e-9


def test_permission_checks():
    assert logic.can_manage_modes(logic.MANAGE_GUILD)
    assert logic.can_manage_modes(logic.ADMINISTRATOR)
    assert not logic.can_manage_modes((1 << 11) | (1 << 10))
    assert logic.is_operator(5, [5], [])  # SER_ADMIN_IDS
    assert logic.is_operator(7, [5], [7])  # the application's owner
    assert not logic.is_operator(6, [5], [7])  # a server's Administrator is neither


def test_kept_clips_are_capped_per_person_and_per_server_newest_first():
    from bot.retrain import cap_kept_clips

    clips = [{"path": f"{i}", "speaker": str(i % 3), "guild": 1 if i < 9 else None} for i in range(12)]
    # newest first: 11-9 (DMs, one bucket), then guild 1's 8, 7, 6; 5 would be speaker 2's third clip
    kept, left_out = cap_kept_clips(clips, per_user=2, per_server=4)
    assert [c["path"] for c in kept] == ["6", "7", "8", "9", "10", "11"] and left_out == 6
    # a server's cap: one community with many voices
    many = [{"path": f"{i}", "speaker": str(i), "guild": 5} for i in range(10)]
    kept, left_out = cap_kept_clips(many, per_user=20, per_server=3)
    assert [c["path"] for c in kept] == ["7", "8", "9"] and left_out == 7
    assert cap_kept_clips(clips, per_user=0, per_server=10) == ([], 12)


def test_cooldown_counts_from_the_end_of_the_last_run():
    from bot.retrain import cooldown_left

    assert cooldown_left(None, 900, 1000.0) == 0.0
    assert cooldown_left(1000.0, 900, 1600.0) == 300.0
    assert cooldown_left(1000.0, 900, 2000.0) == 0.0
    assert cooldown_left(1000.0, 0, 1001.0) == 0.0


def test_mode_channel_and_visible_channels_follow_threads_and_permissions():
    from types import SimpleNamespace as NS

    assert logic.mode_channel_id(NS(parent_id=7), 99) == 7  # a thread: its parent
    assert logic.mode_channel_id(NS(), 99) == 99 and logic.mode_channel_id(None, 99) == 99

    def channel(view: bool, history: bool = True, private: bool = False):
        perms = NS(view_channel=view, read_message_history=history)
        return NS(permissions_for=lambda member: perms, is_private=lambda: private)

    chans = {
        1: channel(True),
        2: channel(False),
        3: channel(True, history=False),
        4: channel(True, private=True),
    }
    guild = NS(get_channel_or_thread=chans.get)
    assert logic.visible_channels(guild, object(), [1, 2, 3, 4, 5]) == {1}


def test_aggregate_counts_by_day_and_label():
    now = dt.datetime(2026, 3, 10, 12, tzinfo=dt.timezone.utc).timestamp()
    day = 86400
    rows = [
        (now, "sad", 0.5),
        (now - day, "sad", 0.7),
        (now - day, "angry", 0.9),
        (now - 10 * day, "happy", 1.0),
        (now, "legacy", 0.6),
    ]
    s = logic.aggregate(rows, days=3, labels=("angry", "sad", "happy"), now=now)
    assert s.total == 4
    assert list(s.counts.items()) == [("sad", 2), ("angry", 1), ("legacy", 1)]
    assert s.days[-1] == dt.date(2026, 3, 10) and len(s.days) == 3
    assert s.per_day["sad"] == [0, 1, 1]
    assert s.per_day["angry"] == [0, 1, 0]
    assert s.per_day["happy"] == [0, 0, 0]
    assert s.mean_confidence == pytest.approx((0.5 + 0.7 + 0.9 + 0.6) / 4)


async def test_worker_runs_off_the_loop_and_refuses_when_full():
    w = Worker(workers=1, max_pending=2)
    gate = threading.Event()
    loop_thread = threading.get_ident()
    jobs = [asyncio.create_task(w.submit(lambda: (gate.wait(5), threading.get_ident())[1])) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(Busy):
        await w.submit(lambda: 1)
    gate.set()
    assert all(ident != loop_thread for ident in await asyncio.gather(*jobs))
    assert await w.submit(lambda: 3) == 3
    await w.close(timeout=1)
    with pytest.raises(Closed):
        await w.submit(lambda: 1)
