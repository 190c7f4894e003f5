"""Two ``python -m bot`` processes (shards 0 and 1 of 2) against one fake Discord and one real PostgreSQL.

Skipped, with a one-line reason, where no PostgreSQL server is reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sys
from pathlib import Path

import pg
import pytest
from bot_helpers import bot_env, first_emotion, make_labelled_folder

from bot.logic import ADMINISTRATOR
from bot.testing.fakediscord import FakeDiscord

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]
MODEL_IN_FOOTER = re.compile(r"model (\S+)")


class Shards:
    """Start, kill and restart the shard processes of one deployment."""

    def __init__(self, fake: FakeDiscord, url: str, root: Path, model_path: Path, **env: str) -> None:
        self.fake, self.url, self.root, self.model_path = fake, url, root, model_path
        self.extra = env
        self.procs: dict[int, asyncio.subprocess.Process] = {}

    async def start(self, shard: int) -> None:
        env = bot_env(
            DISCORD_TOKEN="shard-token",
            SER_DATABASE_URL=self.url,
            SER_SHARD_COUNT="2",
            SER_SHARD_IDS=str(shard),
            SER_DATA_DIR=str(self.root / f"data{shard}"),  # nothing shared on disk: only PostgreSQL
            SER_ADMIN_IDS="42",
            SER_RATE_LIMIT="0",
            **self.fake.env(),
            **self.extra,
        )
        log = open(self.root / f"shard{shard}.log", "ab")  # noqa: SIM115 - the process writes it
        self.procs[shard] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.root, env=env, stdout=log, stderr=log
        )
        log.close()

    def log(self, shard: int) -> str:
        return (self.root / f"shard{shard}.log").read_text(errors="replace")

    async def kill(self, shard: int) -> None:
        proc = self.procs.pop(shard)
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()

    async def stop_all(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for shard, proc in list(self.procs.items()):
            try:
                await asyncio.wait_for(proc.wait(), 20)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
            self.procs.pop(shard)


@pytest.fixture
async def deployment(tmp_path, postgres_url, model_path):
    """A fake Discord with 2 shards and 4 guilds (two per shard), and both shard processes running."""
    async with FakeDiscord(shard_count=2, guild_count=4) as fake:
        shards = Shards(fake, postgres_url, tmp_path, model_path, SER_MODEL_PATH="")
        for shard in (0, 1):
            await shards.start(shard)
        try:
            await fake.wait_ready(60)
            await asyncio.sleep(0.5)  # each process's guild_ready_timeout
            yield fake, shards
        finally:
            await shards.stop_all()


async def note_in(fake, guild, data: bytes, *, author=None, timeout: float = 30.0):
    note = await fake.send_message(
        attachments=[fake.voice_attachment(data, 2.5)], guild_id=guild.id, author=author
    )
    return await fake.wait_for_reply(note["id"], timeout=timeout)


def served_model(reply) -> str:
    return MODEL_IN_FOOTER.findall(reply.text)[-1]


async def test_notes_on_both_shards_history_and_forget_everywhere(deployment, voice_ogg):
    fake, _ = deployment
    assert {g.shard for g in fake.guilds} == {0, 1}
    someone = fake.user(fake.new_id(), "someone")
    for guild in fake.guilds:  # every guild answered, by the process of its shard
        for author in (None, someone):
            reply = await note_in(fake, guild, voice_ogg, author=author)
            assert first_emotion(reply.text) and reply.guild_id == guild.id
    for guild in fake.guilds:  # history: the guild's own results, whichever process stored them
        inter = await fake.slash("emotion", "history", [], guild_id=guild.id)
        assert (await fake.wait_interaction(inter, kinds=("callback",))).text.count("%") == 2
    # forget, asked in a guild of shard 1, deletes the owner's rows stored by both processes
    inter = await fake.slash("emotion", "forget", [], guild_id=fake.guilds_of(1)[0].id)
    assert "Deleted 4 stored results" in (await fake.wait_interaction(inter, kinds=("callback",))).content
    for guild in fake.guilds:
        inter = await fake.slash("emotion", "history", [], guild_id=guild.id)
        assert (await fake.wait_interaction(inter, kinds=("callback",))).text.count("%") == 1
    # exactly one process synced the commands (shard 0's)
    assert len([c for c in fake.commands.get("global", []) if c.get("name") == "emotion"]) == 1


async def test_a_retrain_in_one_process_is_served_by_the_other_and_runs_once(deployment, voice_ogg, tmp_path):
    fake, shards = deployment
    g0, g1 = fake.guilds_of(0)[0], fake.guilds_of(1)[0]
    start = served_model(await note_in(fake, g1, voice_ogg))
    # shards are restarted with training data (the processes read SER_RAVDESS_DIR at start)
    await shards.stop_all()
    # enough clips that training outlasts a progress edit (every 2 s)
    labelled = make_labelled_folder(tmp_path / "labelled", per_speaker=60, seconds=2.0)
    shards.extra["SER_RAVDESS_DIR"] = str(labelled)
    for shard in (0, 1):
        await shards.start(shard)
    await fake.wait_connected({0, 1}, 60)
    await asyncio.sleep(1.0)

    admin = {"permissions": ADMINISTRATOR}
    options = [opt("preset", "seed"), {"type": 5, "name": "force", "value": True}]
    inter = await fake.slash("emotion", "retrain", options, guild_id=g0.id, **admin)
    assert "Retraining" in (await fake.wait_interaction(inter, kinds=("callback",), timeout=30)).content
    await fake.wait_for(
        lambda r: r.kind == "edit" and r.token == inter["token"] and "elapsed" in r.content, 60
    )
    # a second request in the other process is refused and shows the running one's progress
    busy = await fake.slash("emotion", "retrain", [], guild_id=g1.id, **admin)
    text = (await fake.wait_interaction(busy, kinds=("callback",), timeout=30)).content
    assert "already in progress in another process (seed)" in text and "elapsed" in text, text

    done = await fake.wait_for(
        lambda r: r.kind == "edit" and r.token == inter["token"] and r.content[:1] in "✅⏹❌", 180
    )
    assert done.content.startswith("✅"), done.content
    new = re.search(r"model `(\S+)` is now live", done.content)[1]
    assert new != start
    # the other process serves the new version within 5 s
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while served_model(await note_in(fake, g1, voice_ogg)) != new:
        assert loop.time() < deadline, "shard 1 did not adopt the new model within 5 s"
        await asyncio.sleep(0.2)

    # rollback from shard 1: shard 0 follows
    inter = await fake.slash("emotion", "rollback", [], guild_id=g1.id, **admin)
    assert "Rolled back" in (await fake.wait_interaction(inter, kinds=("followup",), timeout=30)).content
    deadline = loop.time() + 5
    while served_model(await note_in(fake, g0, voice_ogg)) != start:
        assert loop.time() < deadline, "shard 0 did not follow the rollback within 5 s"
        await asyncio.sleep(0.2)


async def test_kill_9_of_one_process_leaves_the_other_serving_and_a_restart_adopts(
    deployment, voice_ogg, postgres_url, model_path
):
    fake, shards = deployment
    g0, g1 = fake.guilds_of(0)[0], fake.guilds_of(1)[0]
    for guild in (g0, g1):
        await note_in(fake, guild, voice_ogg)
    await shards.kill(1)  # SIGKILL: no shutdown code runs
    await fake.wait_connected({0}, 30)
    for _ in range(3):  # shard 0 keeps answering its guilds
        assert first_emotion((await note_in(fake, g0, voice_ogg)).text)
    silent = await fake.send_message(attachments=[fake.voice_attachment(voice_ogg, 2.5)], guild_id=g1.id)
    assert fake.undelivered and fake.undelivered[-1].data["id"] == silent["id"]

    # meanwhile another model becomes live (published as if by a retrain elsewhere)
    from synth import random_model

    from bot.storage import Storage

    newer = random_model(seed=9, fit_seed=9)
    newer_path = shards.root / "newer.npz"
    newer.save(newer_path)
    st = await Storage.open(postgres_url)
    try:
        await st.publish_model(newer_path, newer.version, previous="base")
        assert await st.count() == 5  # nothing committed was lost with the killed process
    finally:
        await st.close()
    deadline = asyncio.get_running_loop().time() + 5
    while served_model(await note_in(fake, g0, voice_ogg)) != newer.version:  # the live one adopts
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)

    await shards.start(1)  # the restarted process serves the current model at once
    await fake.wait_connected({0, 1}, 60)
    await asyncio.sleep(1.0)
    assert served_model(await note_in(fake, g1, voice_ogg)) == newer.version


async def test_database_connections_cut_under_load(deployment, voice_ogg, postgres_url):
    """A PostgreSQL restart, as the processes see it: every connection dies. Notes keep being answered
    meanwhile, both processes reconnect, and no row committed before the cut is lost."""
    fake, shards = deployment
    stored_before = 0
    for guild in fake.guilds:
        await note_in(fake, guild, voice_ogg)
        stored_before += 1

    async def load(n: int) -> list:
        return [await note_in(fake, fake.guilds[i % 4], voice_ogg) for i in range(n)]

    burst = asyncio.create_task(load(12))
    await asyncio.sleep(0.3)
    assert await pg.cut_connections(postgres_url) >= 2
    replies = await burst
    assert all(first_emotion(r.text) for r in replies), [r.text[:80] for r in replies]
    after = await load(4)  # reconnected: these are stored again (their buttons carry a row id)
    assert all(r.custom_ids for r in after)

    from bot.storage import Storage

    st = await Storage.open(postgres_url)
    try:
        assert await st.count() >= stored_before + 4
    finally:
        await st.close()
    for shard in (0, 1):  # an outage is logged once and its end too
        log = shards.log(shard)
        assert log.count("storage failed") <= 1
        assert "storage failed" not in log or "storage works again" in log


def opt(name: str, value: str) -> dict:
    return {"type": 3, "name": name, "value": value}
