"""/emotion retrain and rollback through the real client: a training child process, progress edits, the
atomic swap, failures that leave the model serving, and start-up from the pointer file."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal

import pytest
from bot_helpers import make_labelled_folder, start_bot, stop_bot

from bot.cogs.emotion import Emotion
from bot.logic import ADMINISTRATOR
from bot.models import load_live
from bot.modelstore import ModelStore
from bot.retrain import Retraining, decide, live_accuracy
from bot.settings import Settings
from ser_core import PRESETS, load_model
from ser_core.presets import DEFAULT_PRESET

pytestmark = pytest.mark.timeout(120)
ADMIN = {"permissions": ADMINISTRATOR}


@pytest.fixture(scope="session")
def labelled(tmp_path_factory):
    return make_labelled_folder(tmp_path_factory.mktemp("labelled"))


@pytest.fixture
def fast_progress(monkeypatch):
    monkeypatch.setattr(Retraining, "PROGRESS_EVERY_S", 0.3)


def edits_of(fake, inter) -> list[str]:
    return [r.content for r in fake.for_interaction(inter) if r.kind == "edit"]


async def final_edit(fake, inter, timeout: float = 100.0) -> str:
    rec = await fake.wait_for(
        lambda r: r.kind == "edit" and r.token == inter["token"] and r.content[:1] in "✅⏹❌", timeout
    )
    return rec.content


async def model_card_text(fake) -> str:
    inter = await fake.slash("emotion", "model")
    return (await fake.wait_interaction(inter, kinds=("callback",))).text


async def test_retrain_swaps_in_a_new_model_refuses_a_second_run_and_rollback_restores(
    fake, settings, model, model_path, labelled, fast_progress, voice_ogg
):
    settings = dataclasses.replace(settings, ravdess_dir=labelled)
    bot, task = await start_bot(fake, settings, model)
    try:
        old = bot.models.model.version
        # One note whose author says it was angry and lets the bot keep it: retraining must use it.
        note = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)])
        reply = await fake.wait_for_reply(note["id"])
        row_id = int(reply.custom_ids[0].rsplit(":", 1)[1])
        menu = await fake.wait_interaction(
            await fake.click(reply, f"ser:fb:wrong:{row_id}"), kinds=("callback",)
        )
        await fake.wait_interaction(
            await fake.click(menu, menu.custom_ids[0], values=["angry"]), kinds=("callback",)
        )
        await fake.wait_interaction(await fake.click(reply, f"ser:fb:keep:{row_id}"), kinds=("callback",))

        inter = await fake.slash("emotion", "retrain", **ADMIN)
        first = await fake.wait_interaction(inter, kinds=("callback",))
        assert first.payload["type"] == 4 and "Retraining (`rich`)" in first.content  # answered at once

        await fake.wait_for(lambda r: r.kind == "edit" and r.token == inter["token"] and "%" in r.content, 60)
        second = await fake.slash(
            "emotion", "retrain", [{"type": 3, "name": "preset", "value": "seed"}], **ADMIN
        )
        busy = (await fake.wait_interaction(second, kinds=("callback",))).content
        assert "already in progress" in busy and "%" in busy and "elapsed" in busy

        text = await final_edit(fake, inter)
        assert text.startswith("✅") and "is now live" in text and "1 kept clip" in text, text
        new = bot.models.model.version
        assert new != old and f"`{new}`" in text and f"`{old}`" in text
        assert any("elapsed" in e for e in edits_of(fake, inter)[:-1])  # progress was shown before the end
        assert new in await model_card_text(fake)
        assert bot.models.model.card["scores"]["actors"]["accuracy"] >= 0.8  # three very different sounds
        assert (
            bot.models.model.card["data"]["n_extra_clips"] == 1
            and bot.models.model.card["data"]["n_clips"] == 37
        )

        store = ModelStore(settings.data_dir)
        shared = bot.storage.shared
        if shared:  # PostgreSQL: the model is a row every process can fetch; "base" = each one's start model
            ptr = await bot.storage.model_pointer()
            assert (ptr.current, ptr.previous) == (new, "base")
            assert load_model(await bot.storage.model_file(new)).version == new
        else:
            pointer = json.loads(store.pointer_path.read_text())
            assert pointer == {"path": f"model-{new}.npz", "previous": str(model_path.resolve())}
            assert load_model(store.dir / pointer["path"]).version == new
        assert list(store.dir.glob("candidate-*")) == [] and list(store.dir.glob(".job-*")) == []

        back = await fake.slash("emotion", "rollback", **ADMIN)
        text = (await fake.wait_interaction(back)).content
        assert "Rolled back" in text and f"`{old}`" in text
        assert bot.models.model.version == old and old in await model_card_text(fake)
        if shared:
            ptr = await bot.storage.model_pointer()
            assert (ptr.current, ptr.previous) == ("base", new)
        else:
            pointer = json.loads(store.pointer_path.read_text())
            assert pointer == {"path": str(model_path.resolve()), "previous": f"model-{new}.npz"}
            assert (store.dir / f"model-{new}.npz").is_file()  # the rolled-back model is kept
    finally:
        await stop_bot(bot, task)

    # A restart serves what the pointer names (SQLite: without SER_MODEL_PATH, the file it names; PostgreSQL:
    # "base", the start model of the restarted process).
    if shared:
        restarted, ref = await load_live(settings)
        assert restarted.version == old and ref == "base"
    else:
        restarted, ref = await load_live(dataclasses.replace(settings, model_path=None))
        assert restarted.version == old and ref == str(model_path.resolve())


async def test_a_worse_model_is_not_swapped_in_unless_forced(fake, settings, model_path, labelled, tmp_path):
    strong = load_model(model_path)
    strong.card["scores"] = {"actors": {"accuracy": 1.5}}  # unbeatable, so the new model counts as worse
    strong.card["version"] = "strong"
    strong.save(tmp_path / "strong.npz")
    settings = dataclasses.replace(settings, ravdess_dir=labelled, model_path=tmp_path / "strong.npz")
    bot, task = await start_bot(fake, settings, load_model(tmp_path / "strong.npz"))
    try:
        inter = await fake.slash("emotion", "retrain", **ADMIN)
        text = await final_edit(fake, inter)
        assert (
            text.startswith("⏹️") and "kept model `strong`" in text and "below the live model's 150.0%" in text
        )
        assert (
            bot.models.model.version == "strong"
            and not (settings.data_dir / "models" / "current.json").exists()
        )
        assert list((settings.data_dir / "models").glob("*.npz")) == []

        forced = await fake.slash(
            "emotion", "retrain", [{"type": 5, "name": "force", "value": True}], **ADMIN
        )
        text = await final_edit(fake, forced)
        assert text.startswith("✅") and "(forced)" in text and bot.models.model.version != "strong"
    finally:
        await stop_bot(bot, task)


async def test_a_failing_retrain_keeps_the_model_and_says_why(fake, settings, model, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    bot, task = await start_bot(fake, dataclasses.replace(settings, ravdess_dir=empty), model)
    try:
        inter = await fake.slash("emotion", "retrain", **ADMIN)
        text = await final_edit(fake, inter, timeout=60)
        assert text.startswith("❌ Retraining failed: no RAVDESS clips") and str(empty) in text
        assert f"keeps using model `{model.version}`" in text
        assert bot.models.model is model and not bot.retraining.running
        assert not (settings.data_dir / "models" / "current.json").exists()
        assert list((settings.data_dir / "models").glob("*.npz")) == []
    finally:
        await stop_bot(bot, task)


async def test_after_the_interaction_expires_the_result_is_posted_in_the_channel(
    fake, settings, model, tmp_path
):
    empty = tmp_path / "empty"
    empty.mkdir()
    bot, task = await start_bot(fake, dataclasses.replace(settings, ravdess_dir=empty), model)
    try:
        inter = await fake.slash("emotion", "retrain", **ADMIN)
        await fake.wait_interaction(inter, kinds=("callback",))
        fake.expire(inter)  # as if training had taken more than 15 minutes
        posted = await fake.wait_for(lambda r: r.kind == "message" and "Retraining failed" in r.content, 60)
        assert posted.channel_id == fake.channel_id and not edits_of(fake, inter)
    finally:
        await stop_bot(bot, task)


async def test_a_killed_training_process_keeps_the_model(fake, settings, model, labelled):
    bot, task = await start_bot(fake, dataclasses.replace(settings, ravdess_dir=labelled), model)
    try:
        inter = await fake.slash("emotion", "retrain", user=fake.user(42, "listed-admin"), permissions=0)
        await fake.wait_interaction(inter, kinds=("callback",))
        for _ in range(200):
            if bot.retraining.retrainer.process is not None:
                break
            await asyncio.sleep(0.05)
        os.kill(bot.retraining.retrainer.process.pid, signal.SIGKILL)  # as the kernel's OOM killer would
        text = await final_edit(fake, inter, timeout=30)
        assert "killed (SIGKILL)" in text and f"`{model.version}`" in text
        assert bot.models.model is model
        assert list((settings.data_dir / "models").glob("candidate-*")) == []
        assert not bot.retraining.running  # the slot is free again
    finally:
        await stop_bot(bot, task)


async def test_retrain_without_data_and_rollback_without_history_explain(fake, bot):
    inter = await fake.slash("emotion", "retrain", **ADMIN)
    assert "SER_RAVDESS_DIR is not set" in (await fake.wait_interaction(inter, kinds=("callback",))).content
    back = await fake.slash("emotion", "rollback", **ADMIN)
    assert "no previous model" in (await fake.wait_interaction(back)).content
    stranger = fake.user(fake.new_id(), "admin-of-this-server-only")
    refused = await fake.slash("emotion", "rollback", user=stranger, permissions=ADMINISTRATOR)
    assert "Only the bot's operators" in (await fake.wait_interaction(refused, kinds=("callback",))).content


# ---------------------------------------------------------------------------------------------- start-up
async def test_start_up_removes_leftovers_of_an_interrupted_run_but_not_models(fake, settings, model):
    models = settings.data_dir / "models"
    models.mkdir(parents=True)
    for name in ("candidate-1.npz", ".job-1.json", ".current-abc.json", "model-keep.npz", "current.json"):
        (models / name).write_bytes(b"x")
    bot, task = await start_bot(fake, settings, model)
    await stop_bot(bot, task)
    assert sorted(p.name for p in models.iterdir()) == ["current.json", "model-keep.npz"]


@pytest.fixture
def shipped(monkeypatch, model_path):
    """Pretend the tiny test model is the shipped one (the repository may not ship a model yet)."""
    import ser_core
    import ser_core.model

    monkeypatch.setattr(ser_core.model, "default_model_path", lambda: model_path)
    monkeypatch.setattr(ser_core, "default_model_path", lambda: model_path)
    return model_path


@pytest.mark.parametrize("damage", ["missing", "corrupt", "bad-pointer"])
async def test_a_broken_pointer_falls_back_to_the_shipped_model(tmp_path, shipped, model, damage, caplog):
    settings = Settings(token="x", data_dir=tmp_path)
    store = ModelStore(tmp_path)
    store.dir.mkdir(parents=True)
    target = store.dir / "model-x.npz"
    if damage == "corrupt":
        target.write_bytes(shipped.read_bytes()[:500])  # killed half-way through a copy
    store.write(target, previous=None)
    if damage == "bad-pointer":
        store.pointer_path.write_text('{"path": "model-x.n')
    with caplog.at_level(logging.ERROR):
        loaded, ref = await load_live(settings)
    assert loaded.version == model.version and ref == str(shipped.resolve())
    assert caplog.records, "the fallback must be logged"


async def test_a_good_pointer_is_used_and_ser_model_path_wins(tmp_path, model_path, model):
    store = ModelStore(tmp_path)
    store.dir.mkdir(parents=True)
    other = load_model(model_path)
    other.card["version"] = "pointer-test"
    other.save(store.dir / "model-pointer-test.npz")
    store.write(store.dir / "model-pointer-test.npz", previous=model_path)
    assert (await load_live(Settings(token="x", data_dir=tmp_path)))[0].version == "pointer-test"
    pinned = Settings(token="x", data_dir=tmp_path, model_path=model_path)
    assert (await load_live(pinned))[0].version == model.version


# ---------------------------------------------------------------------------------------------- units
@pytest.mark.parametrize(
    ("new", "live", "force", "swap"),
    [
        (0.80, 0.80, False, True),
        (0.795, 0.80, False, True),
        (0.78, 0.80, False, False),
        (0.50, 0.90, True, True),
        (0.40, None, False, True),
        (None, 0.5, False, False),
    ],
)
def test_swap_only_if_not_worse_by_more_than_a_point(new, live, force, swap):
    assert decide(new, live, force=force)[0] is swap


def test_live_accuracy_reads_the_card():
    assert live_accuracy({"scores": {"actors": {"accuracy": 0.61}}}) == 0.61
    assert live_accuracy({"data": "random"}) is None and live_accuracy({"scores": "?"}) is None


def test_preset_choices_are_the_ser_core_presets():
    # What Discord offers: the choices on the registered command's parameter, the default first.
    param = next(p for p in Emotion.retrain.parameters if p.name == "preset")
    assert [c.value for c in param.choices] == [DEFAULT_PRESET, *(p for p in PRESETS if p != DEFAULT_PRESET)]


async def test_a_retrain_held_by_another_process_is_refused_with_its_progress_or_why(
    fake, settings, model, labelled, postgres_url
):
    """Another process holds the one retraining slot (PostgreSQL's advisory lock): a request here is refused,
    showing that run's progress when it published some, and saying so plainly when it did not yet."""
    from bot.storage import Storage

    settings = dataclasses.replace(settings, ravdess_dir=labelled, database_url=postgres_url)
    other = await Storage.open(postgres_url)
    bot, task = await start_bot(fake, settings, model)
    try:
        assert await other.try_lock_retrain()
        inter = await fake.slash("emotion", "retrain", **ADMIN)
        text = (await fake.wait_interaction(inter, kinds=("callback",))).content
        assert "another process holds the retraining slot" in text, text
        await other.set_retrain_status({"preset": "seed", "line": "fitting: 40 %"})
        inter = await fake.slash("emotion", "retrain", **ADMIN)
        text = (await fake.wait_interaction(inter, kinds=("callback",))).content
        assert "in progress in another process (seed): fitting: 40 %" in text, text
        assert not bot.retraining.running
    finally:
        await stop_bot(bot, task)
        await other.unlock_retrain()
        await other.close()
