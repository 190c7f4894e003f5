"""The storage contract, on both drivers: SQLite (a file) and PostgreSQL (a fresh database per test; skipped
with a one-line reason where no server is reachable)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pg
import pytest
from bot_helpers import det

from bot.storage import Detection, Storage, postgres
from bot.storage.postgres import PostgresStorage

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["sqlite", "postgres"])
async def target(request, tmp_path):
    """Where a storage opens: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield tmp_path / "data" / "ser-bot.sqlite3"
        return
    async with pg.fresh_database() as url:
        yield url


@pytest.fixture
async def st(target):
    storage = await Storage.open(target)
    yield storage
    await storage.close()


async def test_results_history_and_direct_messages_apart(st):
    for i, user in enumerate([10, 10, 11]):
        await st.add_detection(det(user, 1000.0 + i))
    dm = await st.add_detection(det(10, 1003.0, guild=None))
    assert [d.created_at for d in await st.history(1)] == [1002.0, 1001.0, 1000.0]
    assert [d.user_id for d in await st.history(1, user_id=10, limit=1)] == [10]
    assert len(await st.since(1, 1001.0)) == 2 and await st.history(99) == []
    assert [d.id for d in await st.history(None)] == [dm]  # DMs only where asked for
    assert [d.id for d in await st.since(None, 0.0, user_id=10)] == [dm] and await st.history(
        None, user_id=11
    ) == []
    row = await st.get(dm)
    assert row.guild_id is None and row.probabilities == {"calm": 0.5, "sad": 0.5}
    assert await st.count() == 4 and await st.count(user_id=10) == 3


async def test_feedback_rerun_and_kept_clips(st, tmp_path):
    rid = await st.add_detection(det(11, 1000.0))
    assert not await st.set_feedback(rid, user_id=10, feedback="wrong", true_label="sad")  # not theirs
    with pytest.raises(ValueError):
        await st.set_feedback(rid, user_id=11, feedback="maybe", true_label="sad")
    assert await st.set_feedback(rid, user_id=11, feedback="wrong", true_label="happy")
    assert await st.keep_clip(rid, user_id=10, data=b"OggS" + bytes(64)) is None  # not theirs
    ref = await st.keep_clip(rid, user_id=11, data=b"OggS" + bytes(64))
    assert ref and (await st.get(rid)).clip_path == ref
    assert [(c.detection_id, c.user_id, c.label) for c in await st.kept_clips()] == [(rid, 11, "happy")]
    clips = await st.training_clips(tmp_path / "clips")
    assert [(c["emotion"], c["speaker"]) for c in clips] == [("happy", "11")]
    with open(clips[0]["path"], "rb") as f:
        assert f.read() == b"OggS" + bytes(64)
    rerun = Detection(**{**det(11, 1000.0, label="angry").__dict__, "model_version": "v2"})
    assert await st.replace_result(rid, rerun) and not await st.replace_result(rid + 99, rerun)
    row = await st.get(rid)
    assert (row.label, row.model_version, row.feedback, row.true_label) == ("angry", "v2", None, "happy")
    assert row.clip_path == ref  # the kept clip stays
    assert await st.drop_clip(rid, user_id=11) and not await st.drop_clip(rid, user_id=11)
    assert await st.kept_clips() == [] and (await st.get(rid)).clip_path is None


async def test_profiles_modes_optouts_and_forget(st):
    await st.save_profile(11, {"n": 1, "mean": [0.5], "m2": [0.0]})
    await st.save_profile(11, {"n": 2, "mean": [0.5], "m2": [0.1]})
    assert (await st.get_profile(11))["n"] == 2 and await st.get_profile(10) is None
    assert await st.mode(2, 1) == "auto"
    await st.set_guild_mode(1, "request")
    assert await st.modes(2, 1) == (None, "request")
    await st.set_channel_mode(2, 1, "off")
    assert await st.mode(2, 1) == "off" and await st.mode(3, 1) == "request" and await st.mode(5, 9) == "auto"
    await st.set_channel_mode(2, 1, None)
    assert await st.mode(2, 1) == "request"
    assert await st.auto_role(1) is None and await st.auto_role(7) is None
    await st.set_auto_role(1, 555)
    await st.set_auto_role(7, 556)  # a server with no mode of its own gets the default
    assert await st.auto_role(1) == 555 and await st.mode(2, 1) == "request" and await st.mode(2, 7) == "auto"
    await st.set_auto_role(1, None)
    assert await st.auto_role(1) is None and await st.auto_role(7) == 556
    with pytest.raises(ValueError):
        await st.set_guild_mode(1, "sometimes")
    assert (
        await st.set_opted_out(11, True) and not await st.set_opted_out(11, True) and await st.opted_out(11)
    )
    assert await st.set_opted_out(11, False) and not await st.opted_out(11)
    rid = await st.add_detection(det(11, 1.0))
    await st.add_detection(det(11, 2.0, guild=None))
    await st.add_detection(det(12, 3.0))
    await st.set_feedback(rid, user_id=11, feedback="right", true_label="sad")
    await st.keep_clip(rid, user_id=11, data=b"OggS" + bytes(8))
    assert await st.forget_user(11) == (2, 1)
    assert await st.get_profile(11) is None and await st.kept_clips() == [] and await st.count() == 1


async def test_transcript_settings_per_channel_and_server_with_a_pinned_language(st):
    from bot.storage import TranscriptSettings

    assert await st.transcript_settings(2, 1) == TranscriptSettings(None, False, None)
    assert not (await st.transcript_settings(2, 1)).auto  # off unless someone turns it on
    await st.set_auto_transcripts(None, 1, True)
    await st.set_auto_transcripts(3, 1, False)
    assert (await st.transcript_settings(2, 1)).auto and not (await st.transcript_settings(3, 1)).auto
    await st.set_auto_transcripts(3, 1, None)  # the channel follows the server again
    assert await st.transcript_settings(3, 1) == TranscriptSettings(None, True, None)
    await st.set_transcript_language(1, "pl")
    assert (await st.transcript_settings(2, 1)).language == "pl" and (
        await st.transcript_settings(2, 9)
    ).language is None
    await st.set_transcript_language(1, None)
    assert (await st.transcript_settings(2, 1)).language is None
    # a server's settings made by these commands leave its mode and role alone, and the other way round
    await st.set_guild_mode(1, "request")
    await st.set_auto_role(1, 77)
    assert (await st.transcript_settings(2, 1)).server and await st.mode(2, 1) == "request"
    await st.set_channel_mode(2, 1, "off")
    assert (await st.transcript_settings(2, 1)).auto and await st.auto_role(1) == 77
    with pytest.raises(ValueError):
        await st.set_auto_transcripts(None, 1, None)  # a server has no default to follow


async def test_models_publish_point_and_fetch(st, tmp_path, model_path):
    from ser_core import load_model

    assert await st.model_pointer() is None
    candidate = tmp_path / "data" / "models" / "candidate-v2.npz"
    candidate.parent.mkdir(parents=True, exist_ok=True)
    candidate.write_bytes(model_path.read_bytes())
    start = "base" if st.shared else str(model_path.resolve())  # how each driver names the start model
    ref = await st.publish_model(candidate, "v2", previous=start)
    pointer = await st.model_pointer()
    assert pointer.current == ref and pointer.previous == start
    path = await st.model_file(ref)
    assert load_model(path).version == load_model(model_path).version
    await st.point_model(start, ref)  # a rollback
    assert (await st.model_pointer()).current == start and (await st.model_pointer()).previous == ref
    assert await st.model_file(None) is None
    if st.shared:  # a version nobody published: said, not a file of something else
        with pytest.raises(FileNotFoundError, match="not in the database"):
            await st.model_file("never-published")


async def test_postgres_two_processes_share_models_and_one_retrain(postgres_url, tmp_path, model_path):
    """What only several processes need: a notification to the other storage when the model changes,
    a retrain slot one of them holds at a time (freed when its connection dies), a status others can read."""
    a = await Storage.open(postgres_url)
    b = await Storage.open(postgres_url)
    try:
        assert isinstance(a, PostgresStorage) and a.shared
        heard = asyncio.Event()

        async def changed() -> None:
            heard.set()

        await b.watch_models(changed)
        await asyncio.sleep(0.3)  # the LISTEN connection is up
        await a.publish_model(model_path, "vx", previous=None)
        await asyncio.wait_for(heard.wait(), 5)
        assert (await b.model_pointer()).current == "vx"
        assert (await b.model_file("vx")).read_bytes() == model_path.read_bytes()

        assert await a.try_lock_retrain() and not await b.try_lock_retrain()
        await a.set_retrain_status({"preset": "seed", "line": "fitting: 40 %"})
        assert await b.retrain_status() == {"preset": "seed", "line": "fitting: 40 %"}
        heard.clear()
        await pg.cut_connections(postgres_url)  # a process killed mid-run: PostgreSQL frees its lock
        a._lock_conn = None
        for _ in range(50):
            try:
                if await b.try_lock_retrain():
                    break
            except Exception:  # b's pool connections were cut too: the next call gets a new one
                pass
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the retrain slot was not freed when its holder's connection died")
        assert await a.retrain_status() is not None  # b holds it now; a sees the (old) row as b's
        await b.set_retrain_status(None)
        await b.unlock_retrain()
        assert await a.retrain_status() is None
        # b re-read the pointer after its LISTEN connection came back (notifications are not replayed)
        await asyncio.wait_for(heard.wait(), 10)
    finally:
        await a.close()
        await b.close()


async def test_postgres_migrations_run_once_when_processes_start_together(postgres_url):
    stores = await asyncio.gather(*(Storage.open(postgres_url) for _ in range(3)))
    try:
        assert {await s.schema_version() for s in stores} == {postgres.SCHEMA_VERSION}
        rows = await stores[0]._fetch("SELECT version FROM schema_version ORDER BY version")
        assert [r[0] for r in rows] == list(range(1, postgres.SCHEMA_VERSION + 1))
    finally:
        for s in stores:
            await s.close()


async def test_a_sqlite_deployment_copies_into_postgresql(tmp_path, postgres_url, model_path):
    """The upgrade path: everything a one-process bot stored, copied into an empty PostgreSQL database."""
    from bot.storage.copy import CopyError, copy_sqlite, main

    src = tmp_path / "data" / "ser-bot.sqlite3"
    old = await Storage.open(src)
    rid = await old.add_detection(det(10, 1000.0))
    dm = await old.add_detection(det(10, 1001.0, guild=None))
    await old.add_detection(det(11, 1002.0))
    await old.set_feedback(rid, user_id=10, feedback="wrong", true_label="angry")
    await old.keep_clip(rid, user_id=10, data=b"OggS" + bytes(40))
    await old.save_profile(10, {"n": 3, "mean": [0.1], "m2": [0.2]})
    await old.set_channel_mode(2, 1, "off")
    await old.set_guild_mode(1, "request")
    await old.set_opted_out(11, True)
    await old.set_auto_transcripts(None, 1, True)
    await old.set_auto_transcripts(2, 1, False)
    await old.set_transcript_language(1, "de")
    candidate = tmp_path / "data" / "models" / "candidate-r1.npz"
    candidate.parent.mkdir(parents=True)
    candidate.write_bytes(model_path.read_bytes())
    await old.publish_model(candidate, "r1", previous=None)
    await old.close()

    counts = await copy_sqlite(src, postgres_url)
    assert counts["detections"] == 3 and counts["kept clips"] == 1 and counts["live model"] == 1
    new = await Storage.open(postgres_url)
    try:
        assert [d.id for d in await new.history(1)] == [3, rid] and [
            d.id for d in await new.history(None)
        ] == [dm]
        row = await new.get(rid)
        assert (row.feedback, row.true_label, row.clip_path) == ("wrong", "angry", f"db:{rid}")
        (clip,) = await new.training_clips(tmp_path / "clips")
        assert Path(clip["path"]).read_bytes() == b"OggS" + bytes(40) and clip["emotion"] == "angry"
        assert (await new.get_profile(10))["n"] == 3 and await new.opted_out(11)
        assert await new.modes(2, 1) == ("off", "request")
        settings = await new.transcript_settings(2, 1)
        assert (settings.own, settings.server, settings.language) == (False, True, "de")
        from ser_core import load_model

        live = (await new.model_pointer()).current
        assert load_model(await new.model_file(live)).version == load_model(model_path).version
        assert await new.add_detection(det(12, 1003.0)) == 4  # ids continue after the copied ones
    finally:
        await new.close()
    with pytest.raises(CopyError, match="already holds results"):
        await copy_sqlite(src, postgres_url)
    with pytest.raises(CopyError, match="is not a file"):
        await copy_sqlite(tmp_path / "no-such.sqlite3", postgres_url)
    assert main([str(src), "sqlite:///nope"]) == 2


async def test_history_and_stats_only_from_readable_channels_plus_ones_own(st):
    import dataclasses

    rows = {}
    for user, channel in [(10, 2), (11, 3), (11, 2), (10, 4)]:  # channel 3: staff-only for user 10
        d = dataclasses.replace(det(user, 1000.0 + len(rows)), channel_id=channel)
        rows[(user, channel)] = await st.add_detection(d)
    assert sorted(await st.channels(1)) == [2, 3, 4]
    seen = {d.id for d in await st.history(1, channels={2, 4}, own=10)}
    assert seen == {rows[(10, 2)], rows[(11, 2)], rows[(10, 4)]}  # not 11's note in #staff
    # one's own results count wherever they are, even in a channel one can no longer read
    assert {d.id for d in await st.history(1, channels=set(), own=10)} == {rows[(10, 2)], rows[(10, 4)]}
    assert await st.history(1, channels=set()) == []
    assert {d.id for d in await st.since(1, 0.0, user_id=11, channels={2}, own=10)} == {rows[(11, 2)]}
    assert len(await st.since(1, 0.0)) == 4  # no channel filter: everything (the bot's own reads)


async def test_a_forget_wins_over_a_store_that_began_before_it(st):
    began = 1000.0
    assert await st.add_detection(det(12, 999.0), since=began) is not None
    assert await st.save_profile(12, {"n": 1, "mean": [0.0], "m2": [0.0]}, since=began)
    await st.forget_user(12)  # forgotten now (after ``began``)
    assert await st.add_detection(det(12, 1001.0), since=began) is None  # in flight: not kept
    assert not await st.save_profile(12, {"n": 2, "mean": [0.0], "m2": [0.0]}, since=began)
    assert await st.count(user_id=12) == 0 and await st.get_profile(12) is None
    import time

    later = time.time() + 1  # a note that arrived after the forget is stored as usual
    assert await st.add_detection(det(12, later), since=later) is not None
    assert await st.save_profile(12, {"n": 1, "mean": [0.0], "m2": [0.0]}, since=later)
    assert await st.add_detection(det(13, 5.0)) is not None  # untimed stores are never held back


async def test_state_ids_out_of_range_and_what_a_forget_must_find(st, tmp_path):
    from ser_core.cache import content_hash

    assert await st.get_state("retrain_ended") is None
    await st.set_state("retrain_ended", "123.5")
    await st.set_state("retrain_ended", "124.5")
    assert await st.get_state("retrain_ended") == "124.5"
    for bad in (0, -1, 2**63, 10**19 - 1):  # a forged custom id: no row, no OverflowError
        assert await st.get(bad) is None
    rid = await st.add_detection(det(14, 1000.0, guild=7))
    await st.set_feedback(rid, user_id=14, feedback="right", true_label="sad")
    data = b"OggS" + bytes(80)
    await st.keep_clip(rid, user_id=14, data=data)
    assert await st.kept_clip_digests(14) == [content_hash(data)] and await st.kept_clip_digests(15) == []
    (clip,) = await st.training_clips(tmp_path / "clips")
    assert clip["guild"] == 7


async def test_the_sqlite_file_is_readable_by_the_bot_alone(tmp_path):
    path = tmp_path / "data" / "ser-bot.sqlite3"
    storage = await Storage.open(path)
    try:
        await storage.add_detection(det(1, 1.0))
        for f in path.parent.iterdir():
            if f.name.startswith("ser-bot.sqlite3"):
                assert f.stat().st_mode & 0o077 == 0, f
    finally:
        await storage.close()


async def test_a_cached_postgres_model_file_is_checked_against_its_sha256(postgres_url, model_path, tmp_path):
    from ser_core import load_model

    st = await Storage.open(postgres_url)
    try:
        st._cache = tmp_path / "models-cache"
        version = load_model(model_path).version
        await st.publish_model(model_path, version, previous=None)
        path = await st.model_file(version)
        assert load_model(path).version == version
        path.write_bytes(b"planted by someone else")  # the cache is a temp folder others may write to
        again = await st.model_file(version)
        assert again.read_bytes() == model_path.read_bytes()
        assert st._cache.stat().st_mode & 0o077 == 0
    finally:
        await st.close()


# Before issue 22 each driver numbered its own migrations (SQLite 1–7, PostgreSQL 1–8 with the shared tables
# at 5); a database at any of them, today's latest above all, must open with one numbering and keep its rows.
@pytest.mark.parametrize(
    ("driver", "old_version"),
    [
        ("sqlite", 5),
        ("sqlite", 7),
        ("postgres", 4),
        ("postgres", 5),
        ("postgres", 6),
        ("postgres", 7),
        ("postgres", 8),
    ],
)
async def test_a_database_from_before_one_numbering_upgrades_with_its_rows(tmp_path, driver, old_version):
    import legacy_schema

    from bot.storage import SCHEMA_VERSION

    async with contextlib.AsyncExitStack() as stack:
        if driver == "sqlite":
            target = tmp_path / "ser-bot.sqlite3"
            had = legacy_schema.make_sqlite(target, old_version)
        else:
            target = await stack.enter_async_context(pg.fresh_database())
            had = await legacy_schema.make_postgres(target, old_version)
        st = await Storage.open(target)
        stack.push_async_callback(st.close)
        assert await st.schema_version() == SCHEMA_VERSION == 8
        assert [r[0] for r in await st._fetch("SELECT version FROM schema_version ORDER BY version")] == list(
            range(1, SCHEMA_VERSION + 1)
        )
        row = await st.get(1)
        assert (row.label, row.confidence, row.probabilities, row.model_version) == (
            "sad",
            0.75,
            {"sad": 1.0},
            "v-old",
        )
        assert (row.feedback, row.true_label) == (("wrong", "angry") if "feedback" in had else (None, None))
        assert (await st.get_profile(10) or {}).get("n") == (4 if "feedback" in had else None)
        assert await st.modes(5, 1) == ("off", "request" if "modes" in had else "auto")  # listen=0 stays off
        assert await st.opted_out(11) == ("modes" in had)
        assert await st.auto_role(1) == (77 if "auto_role" in had else None)
        assert await st.get_state("retrain_ended") == ("5.5" if "forgotten" in had else None)
        forgotten = await st.add_detection(det(99, 1500.0), since=1500.0) is None
        assert forgotten == ("forgotten" in had)
        settings = await st.transcript_settings(5, 1)
        assert (settings.own, settings.server, settings.language) == (
            (False, True, "pl") if "transcripts" in had else (None, False, None)
        )
        if "shared" in had:
            assert (await st.model_pointer()).current == "r1"
            assert [(c.detection_id, c.path) for c in await st.kept_clips()] == [(1, "db:1")]
        # and everything the latest schema holds can be written
        await st.set_auto_role(1, 78)
        await st.set_auto_transcripts(None, 1, True)
        await st.set_transcript_language(1, "de")
        await st.set_state("retrain_ended", "6.5")
        assert await st.add_detection(det(12, 2000.0)) == (2 if forgotten else 3)  # ids go on after the old
        assert await st.auto_role(1) == 78 and (await st.transcript_settings(5, 1)).language == "de"
        await st.forget_user(10)
        assert await st.get(1) is None and await st.count(user_id=10) == 0
    if driver == "sqlite":  # reopening changes nothing
        again = await Storage.open(target)
        assert await again.schema_version() == SCHEMA_VERSION and await again.count() >= 1
        await again.close()


def test_the_migrations_refuse_a_gap_in_their_numbering_and_an_unknown_dialect(tmp_path, monkeypatch):
    """A missing step would leave every later database a version behind its tables: refuse to load."""
    import types

    from bot.storage import sql

    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "001_a.sql").write_text("CREATE TABLE a (x BIGINT);")
    (folder / "003_c.sql").write_text("CREATE TABLE c (x BIGINT);")
    (folder / "README.md").write_text("not a step")
    monkeypatch.setattr(sql, "resources", types.SimpleNamespace(files=lambda package: tmp_path))
    sql.migrations.cache_clear()
    try:
        with pytest.raises(RuntimeError, match=r"not numbered 1 to 2: \[1, 3\]"):
            sql.migrations("sqlite")
        (folder / "002_b.postgres.sql").write_text("CREATE TABLE b (x DOUBLE PRECISION);")
        sql.migrations.cache_clear()
        assert sql.migrations("sqlite") == ("CREATE TABLE a (x INTEGER);", "", "CREATE TABLE c (x INTEGER);")
        assert sql.migrations("postgres")[1] == "CREATE TABLE b (x DOUBLE PRECISION);"
        with pytest.raises(ValueError, match="dialect='mysql' must be one of"):
            sql.migrations("mysql")
    finally:
        sql.migrations.cache_clear()
