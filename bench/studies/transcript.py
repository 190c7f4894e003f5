"""``python -m bench.studies.transcript``: a study of the offline transcript (``ser_core.transcribe``).

- **Word error rate** on the corpora whose sentences are known: RAVDESS (two statements, from the file name),
  nEMO (``labels.csv``'s ``text``), EmoDB (its ten sentences, from the code in the file name). SAVEE's
  sentences are not available here, so SAVEE is not scored. A seeded, emotion-balanced sample per corpus;
  WER per corpus and per emotion (emotional speech is harder for ASR: the neutral row is the reference), with
  the language as detected, and for the clips whose language was mistaken, again with it pinned.
- **Padding**: the same clips of a smaller sample decoded padded to 30 s (as Whisper was trained) instead of
  the next multiple of 10 s, to show what the shorter padding costs in words.
- **Time**: the median transcript of a 3.4 s voice note (OGG/Opus, as Discord sends it) against the emotion's
  ``model.predict`` of the same bytes; a 30 s and a 120 s note of RAVDESS sentences back to back.
- **The emotion path beside it**: 24 notes at once through two worker threads (the bot's worker) with no
  transcript running, and with one transcript after another running meanwhile (the bot's bound: one at a
  time); the emotion's p50/p95, interleaved over rounds.
- **Peak RSS** of this process (emotion model + transcriber loaded).

Writes its key ``transcript`` into ``bench/results.json`` (other keys untouched) and its section between the
``bench:transcript`` markers of ``BENCHMARKS.md``. About 5 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ser_core import transcript
from ser_core.audio import decode
from ser_core.datasets import scan_ravdess

from ..common import (
    BENCH,
    RESULTS,
    bench_model,
    corpora_dir,
    percentile,
    rewrite_between,
    save_part,
    stop_process,
    table,
)

RAVDESS_STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
#: EmoDB's ten sentences (Burkhardt et al. 2005), by the code in the file name (``03a01Wa.wav`` → a01).
EMODB_TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
LANGUAGE = {"ravdess": "en", "nemo": "pl", "emodb": "de"}
GOAL_SHORT_S = 1.5
GOAL_RSS_MIB = 1024
MARKDOWN = BENCH.parent / "BENCHMARKS.md"
INTRO = (
    "`python -m bench.studies.transcript` (a study, not part of `python -m bench`: about 5 minutes) measures\n"
    "the offline transcript (`ser_core.transcribe`, Whisper base int8, one thread): word error rate on a\n"
    "seeded, emotion-balanced sample of the corpora whose sentences are known (RAVDESS's two statements, nEMO's\n"
    "`text` column, EmoDB's ten sentences; SAVEE's are not available here), per corpus and per emotion; the\n"
    "padding of each window (10 s steps against Whisper's 30 s); the time of a 3.4 s voice note against the\n"
    "emotion's; a 30 s and a 120 s note; the emotion's latency with transcripts running beside it; peak RSS.\n"
    "The numbers between the markers are rewritten by each run."
)
BEGIN, END = "<!-- bench:transcript:begin -->", "<!-- bench:transcript:end -->"


def sentences(root: Path, corpus: str) -> list[tuple[Path, str, str]]:
    """(path, emotion, sentence) of every clip of ``corpus`` whose sentence is known."""
    folder = root / corpus
    if corpus == "ravdess":
        # the scanner validates the names and keeps speech (03-01-...) only; the statement code is in the name
        return [(c.path, c.emotion, RAVDESS_STATEMENTS[c.statement]) for c in scan_ravdess(folder).clips]
    if corpus not in ("nemo", "emodb"):  # SAVEE's sentences are not available here
        return []
    with open(folder / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if corpus == "nemo":
        return [(folder / r["path"], r["emotion"], r["text"]) for r in rows if r.get("text")]
    if corpus == "emodb":
        out = []
        for r in rows:
            m = re.match(r"\d\d([ab]\d\d)", Path(r["path"]).name)
            if m and m.group(1) in EMODB_TEXTS:
                out.append((folder / r["path"], r["emotion"], EMODB_TEXTS[m.group(1)]))
        return out
    return []


def balanced(clips: list, n: int, seed: int) -> list:
    """``n`` clips, as many of each emotion as there are (round-robin over emotions), seeded."""
    rng = random.Random(seed)
    by: dict[str, list] = defaultdict(list)
    for c in clips:
        by[c[1]].append(c)
    for v in by.values():
        rng.shuffle(v)
    out: list = []
    while len(out) < n and any(by.values()):
        for e in sorted(by):
            if by[e] and len(out) < n:
                out.append(by[e].pop())
    return out


def score(tr: transcript.Transcriber, clips: list, code: str) -> list[dict]:
    rows = []
    for path, emotion, text in clips:
        y = decode(path)
        t0 = time.perf_counter()
        got = tr.transcribe(y)
        seconds = time.perf_counter() - t0
        row = {
            "clip": path.name,
            "emotion": emotion,
            "ref": text,
            "hyp": got.text,
            "language": got.language,
            "wer": transcript.word_error_rate(text, got.text),
            "ref_words": len(transcript.normalise(text)),
            "s": seconds,
            "dur": y.size / 16000,
        }
        row["wer_pinned"] = row["wer"]
        if got.language != code:
            row["wer_pinned"] = transcript.word_error_rate(text, tr.transcribe(y, language=code).text)
        rows.append(row)
    return rows


def pooled(rows: list[dict], key: str = "wer") -> float:
    """Corpus-level WER: edits over all reference words (not the mean of per-clip rates)."""
    words = sum(r["ref_words"] for r in rows)
    return sum(r[key] * r["ref_words"] for r in rows) / max(1, words)


def long_note(root: Path, seconds: float) -> tuple[np.ndarray, str]:
    """RAVDESS sentences of actors 1–3 back to back, as many whole clips as fit in ``seconds``, the rest
    silence; and what they say."""
    clips = [
        c for c in sentences(root, "ravdess") if c[0].parent.name in ("Actor_01", "Actor_02", "Actor_03")
    ]
    random.Random(1).shuffle(clips)
    limit = int(seconds * 16000)
    note, texts, n = np.zeros(limit, dtype=np.float32), [], 0
    for path, _, text in clips:
        y = decode(path)
        if n + y.size > limit:
            break
        note[n : n + y.size] = y
        texts.append(text)
        n += y.size
    return note, " ".join(texts)


def burst(model, data: bytes, tr: transcript.Transcriber, y_short: np.ndarray, rounds: int = 3) -> dict:
    """The emotion's latency for 24 notes at once on two threads, without and with transcripts running."""
    out: dict[str, list[float]] = {"off": [], "on": []}
    p95: dict[str, list[float]] = {"off": [], "on": []}
    for r in range(rounds * 2):
        mode = "off" if r % 2 == 0 else "on"
        stop = threading.Event()
        runner = None
        if mode == "on":

            def loop(stop: threading.Event = stop) -> None:
                while not stop.is_set():
                    tr.transcribe(y_short)

            runner = threading.Thread(target=loop, daemon=True)
            runner.start()
            time.sleep(0.3)
        with ThreadPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            futures = [pool.submit(model.predict, data) for _ in range(24)]
            lat = []
            for f in futures:
                f.result()
                lat.append((time.perf_counter() - t0) * 1000)
        stop.set()
        if runner is not None:
            runner.join()
        out[mode] += lat
        p95[mode].append(percentile(lat, 95))
    return {
        m: {"p50_ms": percentile(out[m], 50), "p95_ms": statistics.median(p95[m]), "notes": len(out[m])}
        for m in out
    }


async def _bot_round(note: bytes, model_file: Path, tmp: Path, notes: int, auto: bool) -> dict:
    """The real bot process (``bench.botproc``) against the fake Discord: ``notes`` voice notes from new
    users at once, with automatic transcripts on (server default) or off; the emotion replies' latency, the
    transcripts edited in, those answered busy, and the process's peak memory."""
    import asyncio
    import os

    from bench.burst import _collect, _send
    from bench.common import BENCH
    from bot.storage import Storage
    from bot.testing.fakediscord import FakeDiscord

    data_dir = tmp / f"data-{auto}-{time.monotonic_ns()}"
    stats_file = data_dir / "stats.json"
    async with FakeDiscord() as fake:
        st = await Storage.open(data_dir / "ser-bot.sqlite3")
        await st.set_auto_transcripts(None, fake.guild_id, auto)
        await st.close()
        env = {k: v for k, v in os.environ.items() if not (k.startswith("SER_") or k == "DISCORD_TOKEN")}
        env.update(
            fake.env(),
            DISCORD_TOKEN="bench-token",
            SER_DATA_DIR=str(data_dir),
            SER_MODEL_PATH=str(model_file),
            PYTHONPATH=str(BENCH.parent),
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.botproc",
            str(stats_file),
            cwd=tmp,
            env=env,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            await fake.wait_ready(60)
            for _ in range(2):  # warm-up: lazy imports, and the transcriber's load when it is on
                i, t = await _send(fake, note)
                await _collect(fake, {i: t}, 60)
                if auto:
                    await fake.wait_for(lambda r, i=i: r.kind == "edit", 60)
            await asyncio.sleep(1.0)
            sends = dict([await _send(fake, note) for _ in range(notes)])
            replies = await _collect(fake, sends, 120)
            ids = {r.message_id for r in fake.records if r.kind == "message" and r.reply_to in sends}
            deadline = time.perf_counter() + 120
            while auto and time.perf_counter() < deadline:
                edits = {r.message_id: r for r in fake.records if r.kind == "edit" and r.message_id in ids}
                if len(edits) == len(ids):
                    break
                await asyncio.sleep(0.2)
            edits = {r.message_id: r for r in fake.records if r.kind == "edit" and r.message_id in ids}
        finally:
            peak_kib = _vm_hwm(proc.pid)
            await stop_process(proc)
    busy = sum("transcribing other notes" in e.text for e in edits.values())
    return {
        "auto": auto,
        "notes": notes,
        "answered": replies["answered"],
        "p50_ms": replies["p50_ms"],
        "p95_ms": replies["p95_ms"],
        "transcribed": sum("📝 Transcript (" in e.text for e in edits.values()),
        "busy": busy,
        "peak_rss_mib": peak_kib / 1024,
    }


def _vm_hwm(pid: int) -> float:
    """The peak resident memory (KiB) of process ``pid`` (Linux ``VmHWM``; 0 elsewhere). Not ``ru_maxrss``
    from inside it: a child started by this big process reports this process's peak as its own."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def bot_burst(root: Path, notes: int = 20, rounds: int = 2) -> dict:
    """``_bot_round`` off and on, alternating, ``rounds`` times each; the median of each column."""
    import asyncio

    from bench.clips import CASES, VOICE_NOTE, make_clips

    model, _ = bench_model()
    out: dict[str, list[dict]] = {"off": [], "on": []}
    with tempfile.TemporaryDirectory(prefix="ser-bench-tx-") as tmp:
        tmp = Path(tmp)
        model_file = tmp / "model.npz"
        model.save(model_file)
        clips, _ = make_clips(tmp, root / "ravdess", {VOICE_NOTE: CASES[VOICE_NOTE]})
        note = clips[VOICE_NOTE].read_bytes()
        for r in range(rounds * 2):
            auto = r % 2 == 1
            out["on" if auto else "off"].append(asyncio.run(_bot_round(note, model_file, tmp, notes, auto)))
    return {
        k: {
            "p50_ms": statistics.median(x["p50_ms"] for x in v),
            "p95_ms": statistics.median(x["p95_ms"] for x in v),
            "answered": min(x["answered"] for x in v),
            "transcribed": statistics.median(x["transcribed"] for x in v),
            "busy": statistics.median(x["busy"] for x in v),
            "peak_rss_mib": max(x["peak_rss_mib"] for x in v),
            "rounds": v,
        }
        for k, v in out.items()
    } | {"notes": notes}


def run(root: Path, n: int = 48, n_pad: int = 12, seed: int = 0, reps: int = 15) -> dict:
    from bench.clips import VOICE_NOTE, make_clips

    t_load = time.perf_counter()
    tr = transcript.load()
    load_s = time.perf_counter() - t_load
    model, model_desc = bench_model()
    corpora: dict = {}
    samples = {}
    for corpus, code in LANGUAGE.items():
        if not (root / corpus).is_dir():
            continue
        clips = balanced(sentences(root, corpus), n, seed)
        samples[corpus] = clips
        rows = score(tr, clips, code)
        per = defaultdict(list)
        for r in rows:
            per[r["emotion"]].append(r)
        corpora[corpus] = {
            "n": len(rows),
            "wer": pooled(rows),
            "wer_pinned": pooled(rows, "wer_pinned"),
            "language_right": sum(r["language"] == code for r in rows) / len(rows),
            "exact": sum(r["wer"] == 0 for r in rows) / len(rows),
            "per_emotion": {e: {"n": len(v), "wer": pooled(v)} for e, v in sorted(per.items())},
            "median_s": statistics.median(r["s"] for r in rows),
            "worst": sorted(rows, key=lambda r: -r["wer"])[:3],
        }
        print(f"  {corpus}: WER {corpora[corpus]['wer']:.1%} on {len(rows)} clips", flush=True)
    # Padding to 30 s, on the first clips of each sample
    pad = {}
    for corpus, clips in samples.items():
        few = clips[:n_pad]
        short = score(tr, few, LANGUAGE[corpus])
        tr.pad_step_s = transcript.WINDOW_S
        try:
            full = score(tr, few, LANGUAGE[corpus])
        finally:
            tr.pad_step_s = transcript.PAD_STEP_S
        pad[corpus] = {
            "n": len(few),
            "wer_10": pooled(short),
            "wer_30": pooled(full),
            "s_10": statistics.median(r["s"] for r in short),
            "s_30": statistics.median(r["s"] for r in full),
        }
    # Time: the 3.4 s voice note, the emotion beside it
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        paths, source = make_clips(Path(tmp), root / "ravdess")
        data = paths[VOICE_NOTE].read_bytes()
    y_short = decode(data)
    model.predict(data)
    tr.transcribe(y_short)
    tx, emo = [], []
    for _ in range(reps):
        t0 = time.perf_counter()
        tr.transcribe(decode(data))
        tx.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        model.predict(data)
        emo.append(time.perf_counter() - t0)
    short = {
        "source": source,
        "transcript_median_s": statistics.median(tx),
        "transcript_p95_s": percentile(tx, 95),
        "emotion_median_s": statistics.median(emo),
        "ratio": statistics.median(tx) / statistics.median(emo),
        "text": tr.transcribe(y_short).text,
    }
    longs = {}
    for seconds in (30.0, 120.0):
        y, ref = long_note(root, seconds)
        t0 = time.perf_counter()
        got = tr.transcribe(y)
        longs[f"{seconds:.0f}"] = {
            "seconds": y.size / 16000,
            "windows": got.windows,
            "s": time.perf_counter() - t0,
            "wer": transcript.word_error_rate(ref, got.text),
            "words": len(got.words),
            "last_word_end_s": got.words[-1].end_s if got.words else None,
        }
    contention = burst(model, data, tr, y_short)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bot = bot_burst(root)
    return {
        "sample_per_corpus": n,
        "seed": seed,
        "threads": tr.threads,
        "load_s": load_s,
        "model": model_desc,
        "corpora": corpora,
        "savee": "SAVEE is not scored: its sentences are not available here",
        "padding": pad,
        "short_note": short,
        "long_notes": longs,
        "burst": contention,
        "bot_burst": bot,
        "peak_rss_mib": round(rss, 1),
        "goals": {
            f"bot process peak RSS with transcripts ≤ {GOAL_RSS_MIB} MiB": bot["on"]["peak_rss_mib"]
            <= GOAL_RSS_MIB,
            f"3.4 s note transcript median ≤ {GOAL_SHORT_S} s": short["transcript_median_s"] <= GOAL_SHORT_S,
            f"peak RSS ≤ {GOAL_RSS_MIB} MiB": rss <= GOAL_RSS_MIB,
            "30 s note whole (one window)": longs["30"]["windows"] == 1,
            "120 s note in windows of at most 30 s": longs["120"]["windows"] >= 4,
        },
    }


def report(r: dict) -> str:
    emotions = sorted({e for c in r["corpora"].values() for e in c["per_emotion"]})
    rows = []
    for name, c in r["corpora"].items():
        rows.append(
            [
                name,
                c["n"],
                f"{c['wer']:.1%}",
                f"{c['wer_pinned']:.1%}",
                f"{c['language_right']:.0%}",
                f"{c['exact']:.0%}",
                *(f"{c['per_emotion'][e]['wer']:.0%}" if e in c["per_emotion"] else "—" for e in emotions),
            ]
        )
    out = [
        f"Sample: {r['sample_per_corpus']} clips per corpus, emotion-balanced, seed {r['seed']}; greedy, int8, "
        f"{r['threads']} thread(s); WER pooled over the corpus's words. {r['savee']}.",
        "",
        table(["corpus", "clips", "WER", "WER, language pinned", "language right", "exact", *emotions], rows),
        "",
        "Padding each window to 30 s instead of the next multiple of 10 s (same clips):",
        "",
        table(
            ["corpus", "clips", "WER padded 10 s", "WER padded 30 s", "median s (10)", "median s (30)"],
            [
                [k, v["n"], f"{v['wer_10']:.1%}", f"{v['wer_30']:.1%}", v["s_10"], v["s_30"]]
                for k, v in r["padding"].items()
            ],
        ),
        "",
    ]
    s = r["short_note"]
    out.append(
        f"3.4 s voice note ({s['source']}, OGG/Opus): transcript median {s['transcript_median_s']:.2f} s "
        f"(p95 {s['transcript_p95_s']:.2f} s), emotion {s['emotion_median_s'] * 1000:.0f} ms "
        f"({s['ratio']:.0f}× the emotion); model load {r['load_s']:.1f} s."
    )
    for k, v in r["long_notes"].items():
        out.append(
            f"{k} s note ({v['seconds']:.0f} s of RAVDESS sentences): {v['windows']} window(s), {v['s']:.1f} s, "
            f"WER {v['wer']:.1%}, last word ends at {v['last_word_end_s']} s."
        )
    b = r["burst"]
    out.append(
        f"Emotion, 24 notes at once on 2 threads: p50/p95 {b['off']['p50_ms']:.0f}/{b['off']['p95_ms']:.0f} ms "
        f"without transcripts, {b['on']['p50_ms']:.0f}/{b['on']['p95_ms']:.0f} ms with one transcript after "
        "another running meanwhile (nice +10, 1 thread)."
    )
    out.append(f"Peak RSS {r['peak_rss_mib']:.0f} MiB (emotion model and transcriber loaded).")
    bb = r.get("bot_burst")
    if bb:
        out += [
            "",
            f"The bot process against the fake Discord, {bb['notes']} voice notes at once from new users, automatic "
            "transcripts off and on (server default), alternating, median of the rounds:",
            "",
            table(
                [
                    "transcripts",
                    "emotion replies",
                    "p50 ms",
                    "p95 ms",
                    "transcripts edited in",
                    "busy",
                    "peak RSS MiB",
                ],
                [
                    [
                        k,
                        f"{v['answered']}/{bb['notes']}",
                        v["p50_ms"],
                        v["p95_ms"],
                        v["transcribed"],
                        v["busy"],
                        v["peak_rss_mib"],
                    ]
                    for k, v in bb.items()
                    if k in ("off", "on")
                ],
            ),
            "",
        ]
    out += [f"- goal {k}: {'MET' if v else 'NOT met'}" for k, v in r["goals"].items()]
    return "\n".join(out)


def write_markdown(r: dict, path: Path = MARKDOWN) -> None:
    m = r["machine"]
    body = (
        f"`python -m bench.studies.transcript` — {m['date']}, {m['cores']} cores, {m['cpu']}, load average "
        f"{m['load']:.1f} at the end; took {r['wall_s']:.0f} s.\n\n{report(r)}\n"
    )
    rewrite_between(path, BEGIN, END, body, missing=f"## Transcripts (issue 24)\n\n{INTRO}\n\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.studies.transcript", description=__doc__.splitlines()[0]
    )
    ap.add_argument("--data", type=Path, help="folder holding ravdess/, nemo/, emodb/ (SER_CORPORA_DIR)")
    ap.add_argument("-n", type=int, default=48, help="clips per corpus (default 48)")
    ap.add_argument("--pad-clips", type=int, default=12, help="clips per corpus for the padding study")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", type=Path, default=MARKDOWN, help="file to refresh ('-': none)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results file to merge into")
    args = ap.parse_args(argv)
    root = args.data or corpora_dir()
    if root is None:
        print("transcript: skipped: set SER_CORPORA_DIR to the folder holding ravdess/, nemo/, emodb/.")
        return 2
    t0 = time.perf_counter()
    r = run(root, n=args.n, n_pad=args.pad_clips, seed=args.seed)
    r.update(
        command="python -m bench.studies.transcript " + " ".join(argv or sys.argv[1:]),
        wall_s=time.perf_counter() - t0,
    )
    results = save_part("transcript", r, args.results)
    print(report(results["transcript"]))
    if str(args.markdown) != "-":
        write_markdown(results["transcript"], args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
