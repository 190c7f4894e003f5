"""kill -9: a real ``python -m bot`` killed while it answers notes and swaps models restarts with a model that
loads and with every result it had answered still in the database (SQLite WAL, atomic pointer replace)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bot_helpers import ROOT, bot_env, bot_process, first_emotion, reap
from synth import random_model

from bot.modelstore import ModelStore
from bot.testing.fakediscord import FakeDiscord
from ser_core import load_model

pytestmark = pytest.mark.timeout(120)


def two_models(models_dir: Path) -> tuple[Path, Path]:
    out = []
    models_dir.mkdir(parents=True, exist_ok=True)
    for seed in (1, 2):
        m = random_model(
            seed=seed, n=64, hidden=(8,), max_iter=20, fit_seed=seed, card={"data": f"random seed {seed}"}
        )
        tmp = m.save(models_dir / f"tmp-{seed}.npz")  # saving stamps the version
        out.append(tmp.rename(models_dir / f"model-{load_model(tmp).version}.npz"))
    return out[0], out[1]


async def start_process(
    fake: FakeDiscord, env: dict, cwd: Path, identifies: int
) -> asyncio.subprocess.Process:
    proc = await bot_process(cwd, env, stdout=asyncio.subprocess.DEVNULL)
    deadline = time.monotonic() + 45
    while len(fake.identifies) <= identifies:
        assert proc.returncode is None, (await proc.stderr.read()).decode()[-2000:]
        assert time.monotonic() < deadline, "the bot did not connect"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the process's guild_ready_timeout; events queue meanwhile
    return proc


async def test_kill_9_while_answering_and_swapping_loses_no_answered_result(tmp_path, voice_ogg):
    data_dir = tmp_path / "data"
    store = ModelStore(data_dir)
    a, b = two_models(store.dir)
    store.write(b, a)  # B is live, A is the previous one: /emotion rollback swaps
    versions = {load_model(a).version, load_model(b).version}
    async with FakeDiscord() as fake:
        env = bot_env(
            DISCORD_TOKEN="kill-token", SER_DATA_DIR=str(data_dir), SER_ADMIN_IDS="42", **fake.env()
        )
        proc = await start_process(fake, env, tmp_path, identifies=0)
        try:
            notes = []
            for i in range(16):  # a different author each: the per-user rate limit stays out of the way
                author = fake.user(fake.new_id(), f"user{i}")
                notes.append(
                    await fake.send_message(
                        attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=author
                    )
                )
                if i == 5:
                    await fake.slash("emotion", "rollback", user=fake.user(42, "admin"), permissions=0)
            note_ids = {int(n["id"]) for n in notes}
            await fake.wait_for(lambda r: r.kind == "message" and r.reply_to in note_ids, timeout=30)
            while len([r for r in fake.records if r.reply_to in note_ids]) < 4:
                await asyncio.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            await asyncio.wait_for(proc.wait(), 10)
        finally:
            await reap(proc)
        answered = {r.reply_to for r in fake.records if r.reply_to in note_ids and first_emotion(r.text)}
        assert len(answered) >= 4

        # The pointer is whole (old or new model) and names a model that loads.
        ptr = json.loads(store.pointer_path.read_text())
        assert store.read() is not None and store.load_current() is not None
        assert {ptr["path"], ptr["previous"]} <= {a.name, b.name}

        proc = await start_process(fake, env, tmp_path, identifies=1)
        try:
            note = await fake.send_message(
                attachments=[fake.voice_attachment(voice_ogg, 2.5)], author=fake.user(fake.new_id(), "after")
            )
            reply = await fake.wait_for_reply(note["id"], timeout=30)
            assert first_emotion(reply.text) is not None
            footer = reply.embeds[0]["footer"]["text"]
            assert any(v in footer for v in versions), footer  # served by A or B, not a fallback
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0, err.decode()[-2000:]
        finally:
            await reap(proc)

    with sqlite3.connect(data_dir / "ser-bot.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = {row[0] for row in db.execute("SELECT message_id FROM detections")}
    missing = answered - stored
    assert not missing, f"{len(missing)} answered result(s) lost"
    assert int(note["id"]) in stored


WRITER = """
import sys
from pathlib import Path
from bot.modelstore import ModelStore
store, a, b = ModelStore(Path(sys.argv[1])), Path(sys.argv[2]), Path(sys.argv[3])
print("ready", flush=True)
while True:
    store.write(a, b)
    store.write(b, a)
"""


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_kill_9_in_the_middle_of_pointer_writes_leaves_a_whole_pointer(tmp_path, delay):
    """The swap's one write is ``current.json`` via temp file + ``os.replace``: kill a process that rewrites it
    in a loop at an arbitrary moment; the pointer is always one of the two whole versions, and start-up
    removes the temp file a kill may leave."""
    store = ModelStore(tmp_path)
    a, b = two_models(store.dir)
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path), str(a), str(b)],
        cwd=ROOT,
        env=bot_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    ptr = store.read()
    assert ptr is not None and {ptr.path, ptr.previous} == {a, b}
    loaded = store.load_current()
    assert loaded is not None and loaded[1] == ptr.path
    store.clean_stale()
    assert sorted(p.name for p in store.dir.iterdir()) == sorted([a.name, b.name, "current.json"])
