"""Views (embeds, chart), storage (schema, migrations, queries) and settings, tested directly."""

from __future__ import annotations

import json
import sqlite3

import pytest
from bot_helpers import det, first_emotion

from bot import views
from bot.logic import aggregate
from bot.settings import Settings, SettingsError
from bot.storage import SCHEMA_VERSION, Storage
from ser_core import EMOTIONS, Prediction, Segment


def pred(probs: dict[str, float], timeline=()) -> Prediction:
    return Prediction(
        label=max(probs, key=probs.get),
        probabilities=probs,
        duration_s=4.0,
        model_version="v1",
        timeline=timeline,
    )


def uniformish(top: str, p_top: float, second: str | None = None, p_second: float = 0.0) -> dict[str, float]:
    rest = [e for e in EMOTIONS if e not in (top, second)]
    left = (1 - p_top - p_second) / len(rest)
    probs = {e: left for e in rest}
    probs[top] = p_top
    if second:
        probs[second] = p_second
    return probs


def embed_text(embed) -> str:
    return "\n".join(
        [embed.title or "", embed.description or ""] + [f.name + "\n" + f.value for f in embed.fields]
    )


@pytest.mark.parametrize("top", EMOTIONS)
def test_result_embed_names_the_top_emotion_first_and_all_classes(top):
    p = pred(uniformish(top, 0.71))
    embed = views.result_embed(p)
    text = embed_text(embed)
    assert first_emotion(text) == top
    assert embed.title.endswith(f"{top} (71 %)")
    for e in EMOTIONS:
        assert e in embed.description
    assert "Not sure" not in text


def test_uncertain_result_names_the_top_two_in_order():
    p = pred(uniformish("sad", 0.40, "calm", 0.35))
    assert p.uncertain
    text = embed_text(views.result_embed(p))
    assert first_emotion(text) == "sad"
    head = text.split("\n")[1]
    assert "Not sure" in head and head.index("sad") < head.index("calm")


def test_a_clear_lead_below_the_models_threshold_is_not_sure_too():
    """The model's own threshold (chosen on training corpora) says when an answer is likely wrong."""
    import dataclasses

    p = pred(uniformish("angry", 0.45, "sad", 0.20))
    assert not p.uncertain  # 25 points ahead
    low = dataclasses.replace(p, unsure_below=0.5)
    assert low.uncertain and "Not sure: **angry** or **sad** (45 % vs 20 %)" in embed_text(
        views.result_embed(low)
    )


def test_timeline_merges_runs():
    probs = uniformish("angry", 0.6)
    segs = (
        Segment(0.0, 3.0, "angry", probs),
        Segment(1.5, 4.5, "angry", probs),
        Segment(3.0, 6.0, "happy", uniformish("happy", 0.5)),
    )
    lines = views.timeline_lines(pred(probs, segs))
    assert len(lines) == 2 and "angry" in lines[0] and "4.5" in lines[0] and "happy" in lines[1]
    embed = views.result_embed(pred(probs, segs))
    assert embed.fields[0].name == "Timeline"


def test_chart_is_a_png():
    s = aggregate([(1e9, "sad", 0.5)], days=5, labels=EMOTIONS, now=1e9)
    png = views.render_chart(s, title="t")
    assert png.startswith(b"\x89PNG") and len(png) > 1000


def test_model_embed_leads_with_corpora_it_never_heard():
    def sc(acc, trained_on=None, ece=None):
        fold = {"trained_on": trained_on, "ece": ece or 0.3, "calibrated": ece is not None}
        return {
            "accuracy": acc,
            "uar": acc - 0.02,
            "macro_f1": acc - 0.03,
            "labels": ["a", "b"],
            "folds": [fold] if trained_on else [],
        }

    card = {
        "data": {
            "corpora": {"ravdess": {"title": "RAVDESS speech", "n_clips": 1440, "licence": "CC BY-NC-SA 4.0"}}
        },
        "scores": {
            "actors": sc(0.74),
            "corpora:savee": sc(0.48, ["ravdess", "nemo"], ece=0.051),
            "corpora:emodb": sc(0.65, ["ravdess", "nemo"]),
        },
        "trained": "2026-01-01",
    }
    text = embed_text(views.model_embed(card, labels=EMOTIONS, version="v9"))
    for s in (
        "v9",
        "RAVDESS speech: 1440 clips, CC BY-NC-SA 4.0",
        "**savee** (trained on ravdess + nemo): 48%",
        "**emodb** (trained on ravdess + nemo): 65%",
        "unseen RAVDESS actors",
        "74%",
        "48% to 65% of notes right",
        "2026-01-01",
        ", ".join(EMOTIONS),
    ):
        assert s in text, s
    assert text.index("never heard") < text.index("Inside its training corpora")
    # The calibration error of a calibrated held-out model, in words; none for an uncalibrated one.
    assert (
        "7 classes" not in text
        and "savee** (trained on ravdess + nemo): 48% (UAR 46%, 2 classes; percentages off by 5 points on average)"
        in text
    )
    assert "emodb** (trained on ravdess + nemo): 65% (UAR 63%, 2 classes)" in text
    old = embed_text(
        views.model_embed({"data": "RAVDESS speech", "created": "2026"}, labels=EMOTIONS, version="v1")
    )
    assert "not evaluated" in old and "RAVDESS speech" in old


async def test_storage_schema_wal_and_queries(tmp_path):
    path = tmp_path / "db.sqlite3"
    st = await Storage.open(path)
    try:
        assert await st.schema_version() == SCHEMA_VERSION
        for i, user in enumerate([10, 10, 11]):
            await st.add_detection(det(user, 1000.0 + i))
        assert [d.created_at for d in await st.history(1)] == [1002.0, 1001.0, 1000.0]
        assert [d.user_id for d in await st.history(1, user_id=10, limit=1)] == [10]
        assert len(await st.since(1, 1001.0)) == 2
        assert await st.history(99) == []
        assert (await st.history(1))[0].probabilities == {"calm": 0.5, "sad": 0.5}
        assert await st.mode(2, 1) == "auto"  # nothing set anywhere
        await st.set_guild_mode(1, "request")
        assert await st.modes(2, 1) == (None, "request") and await st.mode(3, 1) == "request"
        await st.set_channel_mode(2, 1, "off")
        assert await st.mode(2, 1) == "off" and await st.mode(3, 1) == "request"
        await st.set_channel_mode(2, 1, None)  # back to the server's default
        assert await st.mode(2, 1) == "request" and await st.mode(2, 9) == "auto"  # another server
        with pytest.raises(ValueError):
            await st.set_channel_mode(2, 1, "sometimes")
        assert not await st.opted_out(10)
        assert await st.set_opted_out(10, True) and await st.opted_out(10)
        assert not await st.set_opted_out(10, True)  # already
        assert await st.set_opted_out(10, False) and not await st.opted_out(10)
        assert await st.forget_user(10) == (2, 0)
        assert await st.count() == 1
    finally:
        await st.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cols = {r[1] for r in con.execute("PRAGMA table_info(detections)")}
    assert {
        "guild_id",
        "channel_id",
        "user_id",
        "message_id",
        "created_at",
        "label",
        "probabilities",
        "duration_s",
        "model_version",
    } <= cols
    assert not any("audio" in c or "blob" in c for c in cols)
    json.loads(con.execute("SELECT probabilities FROM detections").fetchone()[0])
    con.close()


async def test_storage_migrates_an_old_database(tmp_path):
    from bot.storage import MIGRATIONS

    path = tmp_path / "old.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(
        MIGRATIONS[0] + "; CREATE TABLE schema_version (version INTEGER NOT NULL);"
        " INSERT INTO schema_version VALUES (1);"
    )
    con.commit()
    con.close()
    st = await Storage.open(path)
    assert await st.schema_version() == SCHEMA_VERSION
    await st.close()
    con = sqlite3.connect(path)
    indexes = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    con.close()
    assert "detections_guild_user_time" in indexes


async def test_schema_3_listening_switches_become_modes(tmp_path):
    """A channel someone turned off stays off; one turned on stays automatic; the rest follow the server."""
    from bot.storage import MIGRATIONS

    path = tmp_path / "v3.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(
        ";".join(MIGRATIONS[:3]) + "; CREATE TABLE schema_version (version INTEGER NOT NULL);"
        " INSERT INTO schema_version VALUES (3);"
        " INSERT INTO channel_settings (channel_id, guild_id, listen) VALUES (5, 1, 0), (6, 1, 1);"
    )
    con.commit()
    con.close()
    st = await Storage.open(path)
    try:
        await st.set_guild_mode(1, "request")
        assert [await st.mode(c, 1) for c in (5, 6, 7)] == ["off", "auto", "request"]
    finally:
        await st.close()


def test_settings_defaults_and_parsing(tmp_path):
    s = Settings.from_env({"DISCORD_TOKEN": " abc "})
    assert (s.token, s.max_file_mb, s.max_seconds, s.model_path, s.dev_guild_id) == (
        "abc",
        25.0,
        120.0,
        None,
        None,
    )
    assert s.max_bytes == 25 * 1024 * 1024 and str(s.data_dir) == "data" and s.rate_limit == 5
    s = Settings.from_env(
        {
            "DISCORD_TOKEN": "t",
            "SER_ADMIN_IDS": "1, 2,3",
            "SER_DEV_GUILD_ID": "99",
            "SER_MAX_SECONDS": "30",
            "SER_DATA_DIR": str(tmp_path),
            "SER_RATE_LIMIT": "0",
        }
    )
    assert s.rate_limit == 0
    sharded = Settings.from_env({"DISCORD_TOKEN": "t", "SER_SHARD_COUNT": "4", "SER_SHARD_IDS": " 3,1,3"})
    assert (sharded.shard_count, sharded.shard_ids, sharded.database_url) == (4, (1, 3), None)
    assert Settings.from_env({"DISCORD_TOKEN": "t", "SER_SHARD_COUNT": "2"}).shard_ids is None
    assert (
        s.admin_ids == {1, 2, 3} and s.dev_guild_id == 99 and s.max_seconds == 30 and s.data_dir == tmp_path
    )
    with pytest.raises(AttributeError):
        s.token = "other"  # frozen


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"DISCORD_TOKEN": "  "},
        {"DISCORD_TOKEN": "t", "SER_MAX_FILE_MB": "0"},
        {"DISCORD_TOKEN": "t", "SER_DEV_GUILD_ID": "abc"},
        {"DISCORD_TOKEN": "t", "SER_RAVDESS_DIR": "/no/such"},
        {"DISCORD_TOKEN": "t", "SER_DISCORD_API_BASE": "ftp://x"},
        {"DISCORD_TOKEN": "t", "SER_RATE_LIMIT": "2.5"},
        {"DISCORD_TOKEN": "t", "SER_DATABASE_URL": "sqlite:///x"},
        {"DISCORD_TOKEN": "t", "SER_SHARD_IDS": "0,1"},
        {"DISCORD_TOKEN": "t", "SER_SHARD_COUNT": "2", "SER_SHARD_IDS": "0,2"},
        {"DISCORD_TOKEN": "t", "SER_SHARD_COUNT": "2", "SER_SHARD_IDS": "one"},
        {"DISCORD_TOKEN": "t", "SER_SHARD_COUNT": "two"},
    ],
)
def test_settings_errors_are_one_line(env):
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert "\n" not in str(info.value)


async def test_a_database_url_without_asyncpg_stops_at_start_naming_the_extra(tmp_path, monkeypatch, capsys):
    """asyncpg is the ``postgres`` extra: without it a PostgreSQL URL stops the bot with one line saying how
    to install it, before anything loads; ``Storage.open`` (the copy tool too) says the same."""
    import sys

    from bot.__main__ import main

    monkeypatch.setitem(sys.modules, "asyncpg", None)  # what ``import asyncpg`` does where it is missing
    monkeypatch.setenv("DISCORD_TOKEN", "t")
    monkeypatch.setenv("SER_DATABASE_URL", "postgresql://ser@db-host:5432/ser")
    assert main(["--env-file", str(tmp_path / "none.env")]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("ser-bot: SER_DATABASE_URL") and "pip install 'ser-bot[postgres]'" in line
    monkeypatch.delitem(sys.modules, "bot.storage.postgres", raising=False)  # as if never imported
    with pytest.raises(ImportError, match=r"pip install 'ser-bot\[postgres\]'"):
        await Storage.open("postgresql://ser@db-host:5432/ser")
    assert Settings.from_env({"DISCORD_TOKEN": "t"}).database_url is None  # SQLite needs no extra


def test_train_dirs_join_ravdess_and_refuse_evaluation_only_corpora(tmp_path):
    ravdess, nemo, savee = (tmp_path / n for n in ("ravdess", "nemo", "SAVEE"))
    for d in (ravdess, nemo, savee):
        d.mkdir()
    s = Settings.from_env(
        {"DISCORD_TOKEN": "t", "SER_RAVDESS_DIR": str(ravdess), "SER_TRAIN_DIRS": f" {nemo} ,"}
    )
    assert s.training_data == [ravdess, nemo]
    with pytest.raises(SettingsError, match="SAVEE.*evaluation only") as info:
        Settings.from_env({"DISCORD_TOKEN": "t", "SER_TRAIN_DIRS": f"{nemo}:{savee}"})
    assert "\n" not in str(info.value)
    with pytest.raises(SettingsError, match="not a folder"):
        Settings.from_env({"DISCORD_TOKEN": "t", "SER_TRAIN_DIRS": str(tmp_path / "missing")})


async def test_storage_v2_database_gains_feedback_columns_and_profiles(tmp_path):
    from bot.storage import MIGRATIONS

    path = tmp_path / "v2.sqlite3"
    con = sqlite3.connect(path)
    con.executescript(
        MIGRATIONS[0] + ";" + MIGRATIONS[1] + "; CREATE TABLE schema_version (version INTEGER NOT NULL);"
        " INSERT INTO schema_version VALUES (2);"
    )
    con.execute(
        "INSERT INTO detections (guild_id, channel_id, user_id, message_id, created_at, label, confidence,"
        " probabilities, duration_s, model_version) VALUES (1, 2, 10, 3, 1000.0, 'sad', 0.5, '{}', 2.0, 'v')"
    )
    con.commit()
    con.close()
    st = await Storage.open(path)
    try:
        assert await st.schema_version() == SCHEMA_VERSION
        (old,) = await st.history(1)
        assert (old.id, old.feedback, old.true_label, old.clip_path) == (1, None, None, None)
        new_id = await st.add_detection(det(11, 1001.0))
        assert new_id == 2
        assert not await st.set_feedback(new_id, user_id=10, feedback="wrong", true_label="sad")  # not theirs
        assert await st.set_feedback(new_id, user_id=11, feedback="wrong", true_label="happy")
        assert await st.set_clip(new_id, user_id=11, path="feedback/11/2.ogg")
        assert [(c.detection_id, c.user_id, c.label) for c in await st.kept_clips()] == [(2, 11, "happy")]
        with pytest.raises(ValueError):
            await st.set_feedback(new_id, user_id=11, feedback="maybe", true_label="sad")
        await st.save_profile(11, {"n": 1, "mean": [0.5], "m2": [0.0]})
        await st.save_profile(11, {"n": 2, "mean": [0.5], "m2": [0.1]})
        assert (await st.get_profile(11))["n"] == 2 and await st.get_profile(10) is None
        assert await st.forget_user(11) == (1, 0)
        assert await st.get_profile(11) is None and await st.kept_clips() == [] and await st.count() == 1
    finally:
        await st.close()


def test_retrain_progress_names_each_stage():
    from bot.retrain import Progress

    p = Progress("compact-trim", stage="augment:reverb", done=1, total=4)
    assert p.line().startswith("augmenting training clips (reverb): 25 %")
    p.stage, p.total = "calibrate", 0
    assert p.line().startswith("calibrating confidence · ")
