"""The `ser` command: exit codes, one-line errors, JSON output, train → load → predict."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from synth import SR, noise, tone

from ser_core.audio import encode
from ser_core.cli import main
from ser_core.model import load_model
from ser_core.presets import DEFAULT_PRESET


def run(*args, cwd=None):
    """Run the CLI in a subprocess as a user would; returns (code, stdout, stderr)."""
    p = subprocess.run(
        [sys.executable, "-m", "ser_core.cli", *args], capture_output=True, text=True, timeout=240, cwd=cwd
    )
    return p.returncode, p.stdout, p.stderr


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    """A tiny labelled folder: 3 'speakers' x 3 clearly different classes x 4 clips."""
    root = tmp_path_factory.mktemp("labelled")
    rows = ["path,emotion,speaker"]
    for spk in range(3):
        for i in range(4):
            s = spk * 10 + i
            for lab, y in {
                "sad": tone(110 + 3 * i, 1.2, amp=0.1, seed=s),
                "angry": tone(320 + 5 * i, 1.2, amp=0.6, seed=s),
                "fearful": noise(1.2, amp=0.15, seed=s),
            }.items():
                name = f"{lab}_{spk}_{i}.wav"
                (root / name).write_bytes(encode(y, SR, "WAV"))
                rows.append(f"{name},{lab},spk{spk}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def test_train_then_predict_with_the_trained_model(labelled, tmp_path):
    out = tmp_path / "m.npz"
    code, stdout, stderr = run("train", "--data", str(labelled), "--out", str(out), "-q")
    assert code == 0, stderr
    assert "wrote" in stdout and out.is_file() and out.with_suffix(".md").is_file()
    model = load_model(out)
    assert model.labels == ("sad", "angry", "fearful")
    assert model.card["scores"]["actors"]["n_files"] == 36
    # The default preset trains on a noisy and a pitch-shifted copy of every clip besides the clip itself.
    assert model.card["data"]["augmented"] == ["noise", "pitch"] and model.card["n_train"] == 108
    clip = tmp_path / "loud.wav"
    clip.write_bytes(encode(tone(330, 1.2, amp=0.6), SR, "WAV"))
    code, stdout, _ = run("predict", str(clip), "--model", str(out), "--json")
    assert code == 0
    assert json.loads(stdout)["label"] == "angry"


def test_evaluate_json(labelled, capsys):
    assert main(["evaluate", "--data", str(labelled), "--protocol", "actors", "--json", "--jobs", "1"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "uar", "per_class", "protocol", "preset", "n_files"} <= set(res)
    assert res["protocol"] == "actors" and res["n_files"] == 36 and res["preset"] == DEFAULT_PRESET
    assert res["accuracy"] > 0.8  # three very different sounds, unseen 'speakers'


def test_evaluate_confusion_png_and_classes(labelled, tmp_path, capsys):
    png = tmp_path / "cm.png"
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(labelled),
                "--protocol",
                "random",
                "--classes",
                "sad,angry",
                "--confusion",
                str(png),
                "--json",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["labels"] == ["sad", "angry"] and res["n_files"] == 24
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["evaluate", "--data", "/nonexistent", "--json"], "not found"),
        (["evaluate", "--data", ".", "--classes", "calm,bored"], "unknown class 'bored'"),
        (["evaluate", "--data", ".", "--preset", "huge"], "unknown preset"),
        (["info", "/nonexistent.npz"], "not found"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_errors_exit_2_with_one_line(args, message):
    code, stdout, stderr = run(*args)
    assert code == 2
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr and "Traceback" not in stderr


def test_predict_bad_files_exit_2_one_line_each(tmp_path):
    bad = tmp_path / "bad.ogg"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    silent = tmp_path / "silent.wav"
    silent.write_bytes(encode(np.zeros(SR * 2, np.float32), SR, "WAV"))
    code, stdout, stderr = run("predict", str(bad), str(silent))
    assert code == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 2 and "bad.ogg" in lines[0] and "silent" in lines[1]


def test_predict_takes_folders_and_says_cut_short_in_plain_output(labelled, tmp_path):
    from ser_core.audio import encode as enc

    notes = tmp_path / "notes"
    (notes / "sub").mkdir(parents=True)
    whole = enc(tone(220, 2.5, amp=0.4), SR, "WAV")
    (notes / "b.wav").write_bytes(whole)
    (notes / "sub" / "a.wav").write_bytes(whole)
    (notes / "cut.wav").write_bytes(whole[: len(whole) * 3 // 5])  # an upload cut short: the header says more
    (notes / "readme.txt").write_text("not audio, and not an audio extension: skipped")
    model = tmp_path / "m.npz"
    assert (
        run(
            "train",
            "--data",
            str(labelled),
            "--out",
            str(model),
            "--no-evaluate",
            "-q",
            "--preset",
            "compact",
        )[0]
        == 0
    )
    code, stdout, stderr = run("predict", str(notes), "--model", str(model))
    assert code == 0, stderr
    lines = [line for line in stdout.splitlines() if not line.startswith("  ")]
    assert [line.split(":", 1)[0] for line in lines] == [
        str(notes / n) for n in ("b.wav", "cut.wav", "sub/a.wav")
    ]
    assert "cut short: only its first 1.5 s arrived" in lines[1] and "cut short" not in lines[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    code, stdout, stderr = run("predict", str(empty), "--model", str(model))
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "holds no audio files" in stderr


def test_info_on_a_file_that_is_not_a_model_says_so(tmp_path):
    ogg = tmp_path / "note.ogg"
    ogg.write_bytes(encode(tone(200, 1.0), SR, "OGG", "OPUS"))
    code, _, stderr = run("info", str(ogg))
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "is not a ser model file" in stderr and "pickled" not in stderr


def test_nested_selection_reports_the_choice_per_fold(labelled, capsys):
    assert (
        main(["evaluate", "--data", str(labelled), "--nested", "seed,compact", "--json", "--jobs", "1"]) == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert res["protocol"] == "actors-nested" and res["n_files"] == 36 and len(res["folds"]) == 3
    for fold in res["folds"]:
        assert fold["chosen"] in ("seed", "compact")
        assert set(fold["inner_accuracy"]) == {"seed", "compact"}
        # the chosen preset is the one that scored best on the training speakers only
        assert fold["inner_accuracy"][fold["chosen"]] == max(fold["inner_accuracy"].values())
    assert res["accuracy"] > 0.7


def test_nested_needs_two_presets_and_the_actor_protocol(labelled):
    code, _, stderr = run("evaluate", "--data", str(labelled), "--nested", "rich")
    assert code == 2 and "at least two presets" in stderr
    code, _, stderr = run(
        "evaluate", "--data", str(labelled), "--nested", "seed,rich", "--protocol", "random"
    )
    assert code == 2 and "--nested works with --protocol actors" in stderr


def test_train_calibrates_and_evaluate_measures_calibration(labelled, tmp_path, capsys):
    png = tmp_path / "rel.png"
    assert (
        main(["evaluate", "--data", str(labelled), "--calibration", str(png), "--json", "--jobs", "1"]) == 0
    )
    cal = json.loads(capsys.readouterr().out)["calibration"]
    assert set(cal) >= {"ece_before", "ece_after", "temperatures"} and len(cal["temperatures"]) == 3
    assert (
        cal["accuracy_before"] == cal["accuracy_after"]
    )  # clear-cut data: the networks agree, T moves no argmax
    assert png.read_bytes()[:4] == b"\x89PNG"
    out = tmp_path / "m.npz"
    assert main(["train", "--data", str(labelled), "--out", str(out), "-q", "--jobs", "1"]) == 0
    model = load_model(out)
    assert model.temperature == pytest.approx(model.card["calibration"]["temperature"], rel=1e-3)
    assert "Confidence: temperature" in out.with_suffix(".md").read_text()


def test_evaluate_conditions_reports_drops(labelled, capsys):
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(labelled),
                "--conditions",
                "clean,discord,gain-12",
                "--json",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)["conditions"]
    assert list(res) == ["clean", "discord", "gain-12"]
    assert res["clean"]["drop_vs_clean"] == 0.0
    for r in res.values():
        assert 0 <= r["accuracy"] <= 1


def test_unknown_condition_exits_2(labelled):
    code, _, stderr = run("evaluate", "--data", str(labelled), "--conditions", "clean,underwater")
    assert code == 2 and "unknown condition 'underwater'" in stderr


def test_train_with_augmentation_records_it_and_caches_the_copies(labelled, tmp_path):
    import os
    from pathlib import Path

    out = tmp_path / "m.npz"
    assert (
        main(
            [
                "train",
                "--data",
                str(labelled),
                "--out",
                str(out),
                "-q",
                "--jobs",
                "1",
                "--augment",
                "noise,gain",
                "--no-evaluate",
            ]
        )
        == 0
    )
    assert load_model(out).card["data"]["augmented"] == ["noise", "gain"]
    assert (
        "Training augmentation: one copy of every clip per noise, gain" in out.with_suffix(".md").read_text()
    )
    # One cached copy per clip and augmentation, beside the clip's own vector. Counted for these clips only:
    # the cache is shared by the session, and other tests train the default preset (noise copies) too.
    from ser_core.augment import AUGMENT_VERSION
    from ser_core.cache import content_hash
    from ser_core.presets import get_preset

    folder = Path(os.environ["SER_CACHE_DIR"]) / get_preset(DEFAULT_PRESET).key
    digests = {content_hash(p.read_bytes()) for p in labelled.rglob("*.wav")}
    assert len(digests) == 36
    for name in ("noise", "gain"):
        assert all((folder / d[:2] / f"{d}.{name}-a{AUGMENT_VERSION}.npy").is_file() for d in digests)


def test_unknown_augmentation_exits_2(labelled):
    code, _, stderr = run("evaluate", "--data", str(labelled), "--augment", "opus,echo")
    assert code == 2 and "unknown augmentation 'echo'" in stderr


def test_nested_selection_among_augmentation_sets(labelled, capsys):
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(labelled),
                "--nested",
                "seed@none,seed@gain+noise",
                "--json",
                "--jobs",
                "1",
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert len(res["folds"]) == 3
    for fold in res["folds"]:
        assert set(fold["inner_accuracy"]) == {"seed@none", "seed@gain+noise"}
    code, _, stderr = run(
        "evaluate", "--data", str(labelled), "--nested", "seed,compact", "--augment", "gain"
    )
    assert code == 2 and "per candidate" in stderr


@pytest.fixture(scope="module")
def score_folder(tmp_path_factory):
    """A labelled folder for ``ser score``: 3 speakers x 4 classes (neutral among them) x 8 clips, each speaker
    with a voice of its own (a pitch offset), in sub-folders; and a model trained on another such folder."""
    from ser_core.workflow import train_model

    def folder(root, shift: float, speaker_column: bool = True):
        rows = ["path,emotion" + (",speaker" if speaker_column else "")]
        for spk in range(3):
            (root / f"spk{spk}").mkdir(parents=True, exist_ok=True)
            for i in range(8):
                s = 100 * spk + i
                for lab, y in {
                    "neutral": tone(150 + shift * spk + 2 * i, 1.0, amp=0.2, seed=s),
                    "sad": tone(110 + shift * spk + 2 * i, 1.0, amp=0.1, seed=s),
                    "angry": tone(320 + shift * spk + 4 * i, 1.0, amp=0.6, seed=s),
                    "fearful": noise(1.0, amp=0.15, seed=s),
                }.items():
                    rel = f"spk{spk}/{lab}_{i}.wav"
                    (root / rel).write_bytes(encode(y, SR, "WAV"))
                    rows.append(f"{rel},{lab}" + (f",spk{spk}" if speaker_column else ""))
        (root / "labels.csv").write_text("\n".join(rows) + "\n")
        return root

    base = tmp_path_factory.mktemp("score")
    train = folder(base / "train", 12.0)
    model = train_model(str(train), preset="compact", protocols=(), augment="none")
    path = model.save(base / "model.npz")
    return folder(base / "test", 20.0), folder(base / "nospeaker", 20.0, speaker_column=False), path


def test_score_prints_the_adaptation_curve_and_its_json(score_folder, capsys):
    from ser_core.cache import extract_files

    test, _, model_path = score_folder
    assert main(["score", str(test), "--model", str(model_path), "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"model", "clips", "speakers", "adaptation"}
    assert (out["clips"], out["speakers"], out["speakers_from"]) == (96, 3, "the speaker column")
    curve = out["adaptation"]
    assert set(curve) == {
        "none",
        "neutral-1",
        "neutral-3",
        "profile-5",
        "profile-10",
        "profile-20",
        "profile-20-skewed",
        "neutral-3+profile-20",
    }
    for r in curve.values():
        assert set(r) >= {"accuracy", "accuracy_own_classes", "uar", "ece", "accuracy_at_80", "scored"}
    # cold: every clip scored on each of the 3 seeds, and the accuracy is the model's own on them
    model = load_model(model_path)
    clips = sorted(test.glob("spk*/*.wav"))
    X = extract_files(clips, model.features, progress=False)
    truth = np.array([p.stem.split("_")[0] for p in clips])
    cold = np.mean(np.array(model.labels)[model.predict_proba(X).argmax(1)] == truth)
    assert curve["none"]["scored"] == 3 * 96 and curve["none"]["accuracy"] == pytest.approx(cold, abs=1e-4)
    # the notes used to learn a voice are not scored: 32 clips a speaker, 3 speakers, 3 seeds
    assert curve["neutral-3"]["scored"] == 3 * 3 * (32 - 3) and curve["profile-5"]["scored"] == 3 * 3 * 27
    assert (
        curve["profile-20"]["scored"] == 3 * 3 * 12 and curve["neutral-3+profile-20"]["scored"] == 3 * 3 * 9
    )
    assert all(0 <= r["accuracy"] <= 1 for r in curve.values())
    # the plain output: one line per adaptation
    assert main(["score", str(test), "--model", str(model_path), "-q"]) == 0
    text = capsys.readouterr().out
    assert "96 clips, 3 speakers (from the speaker column)" in text and "profile-20-skewed" in text


def test_score_takes_speakers_from_sub_folders_and_refuses_a_bad_table(score_folder, tmp_path, capsys):
    _, nospeaker, model_path = score_folder
    assert main(["score", str(nospeaker), "--model", str(model_path), "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["speakers"] == 3 and out["speakers_from"] == "sub-folders"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "labels.csv").write_text("file,label\nx.wav,sad\n")
    code, stdout, stderr = run("score", str(bad), "--model", str(model_path))
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1
    assert "needs a header with at least path,emotion" in stderr
