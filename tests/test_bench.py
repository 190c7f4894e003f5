"""Smoke test of the benchmark code paths on tiny synthetic inputs (no timing assertions)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys

import pytest
import soundfile as sf
from synth import tone

from bench import __main__ as cli
from bench import accuracy, burst, latency, training
from bench.clips import CASES, VOICE_NOTE
from bench.common import interleaved, save_part, table
from ser_core import EMOTIONS, presets
from ser_core.train import MLPParams

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:Got `batch_size`:UserWarning")]


@pytest.fixture
def no_ravdess(monkeypatch):
    monkeypatch.delenv("SER_RAVDESS_DIR", raising=False)


@pytest.fixture(scope="module")
def tiny_ravdess(tmp_path_factory):
    """48 half-second RAVDESS-named clips: actors 01, 04, 08 (three different folds) × 8 emotions × 2 statements."""
    root = tmp_path_factory.mktemp("ravdess")
    for actor in ("01", "04", "08"):
        (root / f"Actor_{actor}").mkdir()
        for e, _ in enumerate(EMOTIONS, start=1):
            for st in ("01", "02"):
                y = tone(110.0 + 25 * e + int(actor), 0.5, vibrato=0.01 * e, seed=int(st))
                sf.write(root / f"Actor_{actor}" / f"03-01-{e:02d}-01-{st}-01-{actor}.wav", y, 16_000)
    return root


def test_interleaved_and_table():
    calls = []
    ms = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, reps=3, warmup=1)
    assert set(ms) == {"a", "b"} and all(v >= 0 for v in ms.values())
    assert calls == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then the order rotates
    assert table(["x", "y"], [[1.23456, None]]).splitlines()[-1] == "| 1.23 | — |"


@pytest.fixture
def no_system_ffmpeg(monkeypatch):
    """PATH holds only Python's own folder: no system ffmpeg or ffprobe, as after a pip-only install."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    monkeypatch.delenv("SER_FFMPEG", raising=False)
    assert shutil.which("ffprobe") is None


def test_latency_on_short_clips_without_system_ffmpeg(no_ravdess, no_system_ffmpeg):
    cases = {VOICE_NOTE: (*CASES[VOICE_NOTE][:2], 1.0)}
    r = latency.run(reps=1, cases=cases)
    assert set(r["cases"]) == set(cases)
    for c in r["cases"].values():
        assert c["product"] > 0 and c["features"] is not None and c["product_p95"] >= c["product"] * 0.5
        # pydub is measured through the imageio-ffmpeg binary, with no ffprobe anywhere.
        assert c["pydub"] > 0 and c["pydub_over_product"] > 0
    text = latency.report(r)
    assert "floor" in text and "goal" in text and "unavailable" not in text


def test_latency_says_why_pydub_is_missing(no_ravdess, monkeypatch):
    monkeypatch.setitem(sys.modules, "pydub", None)  # as without the bench extra: import fails
    cases = {"WAV 48 kHz 3.4 s": ("clip.wav", None, 1.0)}
    r = latency.run(reps=1, cases=cases)
    assert r["cases"]["WAV 48 kHz 3.4 s"]["pydub"] is None
    assert "pydub: unavailable here (pydub is not installed" in latency.report(r)


def test_accuracy_and_training_on_tiny_folder(tiny_ravdess, tmp_path, monkeypatch):
    # The code paths, not the scores: a tiny classifier keeps the 8 cross-validation fits fast.
    seed = presets.REGISTRY["seed"]
    monkeypatch.setitem(
        presets.REGISTRY, "seed", dataclasses.replace(seed, params=MLPParams(hidden=(8,), max_iter=20))
    )
    r = accuracy.run(tiny_ravdess, presets=("seed",), n_jobs=1, out=tmp_path)
    assert set(r["scores"]) == {"seed/actors", "seed/random"} and r["n_files"] == 48
    assert (tmp_path / "confusion-seed-actors.png").is_file()
    assert "Per-class recall" in accuracy.report(r)
    monkeypatch.delenv("SER_CORPORA_DIR", raising=False)  # RAVDESS alone: no nEMO beside it
    t = training.run(tiny_ravdess, preset="seed")
    assert t["data"] == [tiny_ravdess.name] and set(t["goals"]) and 0 <= t["accuracy"] <= 1
    for kind in ("cold", "cached"):
        stages = t["runs"][kind]["stages_s"]
        assert {"start-up", "features", "evaluate:actors", "fit", "calibrate"} <= set(stages), stages
        assert (
            t["runs"][kind]["total_s"] >= sum(stages.values()) - 0.5 and t["runs"][kind]["peak_rss_mib"] > 0
        )
    text = training.report(t)
    assert "| **total** |" in text and "/emotion retrain ≤ 60 s" in text


def test_burst_with_a_few_notes(no_ravdess):
    r = burst.run(single=1, burst=2, sustained=2, interval=0.05, warmup=0)
    assert [p["answered"] for p in r["phases"].values()] == [1, 2, 2]
    assert r["peak_rss_mib"] > 0 and "loop lag" in burst.report(r)


def test_main_skips_without_data_and_merges_results(no_ravdess, tmp_path, capsys):
    results, md = tmp_path / "results.json", tmp_path / "B.md"
    save_part("other", {"kept": 1}, results)
    assert cli.main(["accuracy", "training", "--results", str(results), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped: set SER_RAVDESS_DIR") == 2
    assert json.loads(results.read_text())["other"]["kept"] == 1
    assert cli.BEGIN in md.read_text()
    with pytest.raises(SystemExit):
        cli.main(["nonsense"])


def test_corpora_bench_keeps_a_row_per_recipe_and_takes_goals_from_the_default_only(tmp_path):
    """Two recipes of one preset (with and without augmentation) are two rows, not one overwriting the other."""
    from test_corpora import _corpus

    from bench import corpora

    for name in ("nemo", "savee"):
        _corpus(tmp_path, name, base=120.0 if name == "nemo" else 125.0)
    r = corpora.run(
        tmp_path,
        presets=(("seed", "seed", None), ("seed@noise", "seed", "noise")),
        n_jobs=1,
        out=tmp_path / "out",
    )
    rows = r["presets"]
    assert list(rows) == ["seed", "seed@noise"]
    assert rows["seed"]["augment"] == [] and rows["seed@noise"]["augment"] == ["noise"]
    # nEMO is the only training corpus: nothing to hold it out for.
    assert set(rows["seed"]["corpora"]) == {"savee"}
    assert r["goals"] == {}  # the default preset was not run
    assert "curve" not in rows["seed"]["corpora"]["savee"]  # curves are the default's
    text = corpora.report(r)
    assert "| seed@noise |" in text and "Training augmentation of seed@noise: noise" in text


def test_corpora_bench_measures_the_default_cold_and_after_learning_each_voice(tmp_path):
    """The default's row carries the adaptation curve of every held-out corpus and of the actor folds, and the
    goals come from it (the classic features stand in for the default's here: the row's name decides)."""
    from test_corpora import _corpus

    from bench import corpora

    for name, base in (("ravdess", 110.0), ("nemo", 120.0), ("savee", 125.0)):
        _corpus(tmp_path, name, base=base, speakers=("01", "02", "03", "04"))
    r = corpora.run(
        tmp_path, presets=((corpora.DEFAULT_PRESET, "seed", "none"),), n_jobs=1, out=tmp_path / "o"
    )
    row = r["presets"][corpora.DEFAULT_PRESET]
    savee = row["corpora"]["savee"]["curve"]
    assert set(savee) >= {"none", "neutral-3", "profile-20", "profile-20-skewed"}
    assert savee["none"]["scored"] > 0 and 0 <= savee["none"]["accuracy_own_classes"] <= 1
    # 2 takes x 4 emotions a speaker: 20 notes leave nothing to score, said rather than guessed
    assert savee["profile-20"]["scored"] == 0 and savee["profile-20"]["speakers_left_out"] == 4
    assert "none" in row["actors_curve"] and len(r["goals"]) == 7
    # two neutral clips a speaker: three references are never drawn, so that goal is unmeasured, never met
    assert savee["neutral-3"]["scored"] == 0
    assert [ok for goal, ok in r["goals"].items() if goal.startswith("3 neutral notes")] == [False]
    text = corpora.report(r)
    assert "after learning each voice" in text and "neutral-3" in text


def test_copies_bench_chooses_on_training_corpora_only(tiny_ravdess, tmp_path):
    """The choice column averages unseen actors and the corpora that may train held out; SAVEE is printed, never
    averaged in."""
    from test_corpora import _corpus

    from bench.studies import copies

    folders = [tiny_ravdess, _corpus(tmp_path, "nemo"), _corpus(tmp_path, "savee", base=125.0)]
    r = copies.run(folders, preset="seed", variants=("none", "noise"), n_jobs=1)
    assert list(r["variants"]) == ["none", "noise"]
    assert r["choice_columns"] == ["actors", "ravdess", "nemo"]
    for row in r["variants"].values():
        assert set(row) == {"actors", "ravdess", "nemo", "savee", "choice"}
        assert row["choice"] == pytest.approx((row["actors"] + row["ravdess"] + row["nemo"]) / 3)
    text = copies.report(r)
    assert "| noise |" in text and "savee (report only)" in text and "**choice**" in text


def test_copies_bench_without_corpora_says_what_to_set(monkeypatch):
    from bench.studies import copies

    monkeypatch.delenv("SER_CORPORA_DIR", raising=False)
    with pytest.raises(SystemExit, match="set SER_CORPORA_DIR or pass --data"):
        copies.main([])


def test_results_with_numpy_scalars_are_saved(tmp_path):
    """A part's goals are often numpy's (``np.mean(a) >= b``): saved as JSON's own types, not a crash after an
    hour's run."""
    import json

    import numpy as np

    from bench.common import save_part

    path = tmp_path / "results.json"
    save_part(
        "corpora", {"goals": {"a goal": np.bool_(False)}, "x": np.float32(0.5), "v": np.arange(2)}, path
    )
    saved = json.loads(path.read_text())["corpora"]
    assert saved["goals"] == {"a goal": False} and saved["x"] == 0.5 and saved["v"] == [0, 1]


def test_a_section_between_markers_is_added_once_then_rewritten_in_place(tmp_path):
    from bench.common import rewrite_between

    path = tmp_path / "B.md"
    path.write_text("# Benchmarks\n\nintro\n")
    rewrite_between(path, "<!-- b -->", "<!-- e -->", "one\n", missing="## Part\n\n")
    rewrite_between(path, "<!-- b -->", "<!-- e -->", "two\n", missing="## Part\n\n")
    assert path.read_text() == "# Benchmarks\n\nintro\n\n## Part\n\n<!-- b -->\ntwo\n<!-- e -->\n"
