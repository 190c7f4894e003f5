"""Data sets: RAVDESS names and scanning; labelled folders; the real RAVDESS when available."""

from __future__ import annotations

import numpy as np
import pytest
from synth import SR, tone

from ser_core.audio import encode
from ser_core.datasets import load_labelled_folder, parse_ravdess_name, scan_ravdess
from ser_core.errors import DatasetError


def test_parse_name():
    f = parse_ravdess_name("03-01-05-02-01-01-12")
    assert f["emotion"] == "angry" and f["actor"] == "12" and f["intensity"] == "02"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("03-01-09-01-01-01-01", "emotion"),
        ("03-01-01-02-01-01-01", "intensity"),
        ("03-01-05-01-01-01-25", "actor"),
        ("03-01-05-01-03-01-01", "statement"),
        ("hello", "not a RAVDESS name"),
    ],
)
def test_parse_name_rejects(name, why):
    with pytest.raises(DatasetError, match=why):
        parse_ravdess_name(name)


def _touch(root, rel):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"x")
    return p


def test_scanner_reports_skipped_and_missing(tmp_path):
    _touch(tmp_path, "Actor_01/03-01-05-02-01-01-01.wav")
    _touch(tmp_path, "Actor_01/03-01-01-01-01-01-01.flac")
    _touch(tmp_path, "Actor_02/03-01-03-01-01-01-02.wav")
    _touch(tmp_path, "Actor_02/03-02-03-01-01-01-02.wav")  # song, not speech
    _touch(tmp_path, "Actor_02/03-01-03-01-01-01-07.wav")  # wrong folder
    _touch(tmp_path, "Actor_02/notes.txt")
    _touch(tmp_path, "Actor_02/bad-name.wav")
    rep = scan_ravdess(tmp_path)
    assert [c.emotion for c in rep.clips] == ["neutral", "angry", "happy"]
    assert rep.speakers == ["01", "02"]
    reasons = " ".join(r for _, r in rep.skipped)
    assert (
        "not audio-only speech" in reasons and "named for actor 07" in reasons and "not a RAVDESS" in reasons
    )
    assert len(rep.missing_actors) == 22
    with pytest.raises(DatasetError, match="expected 1440"):
        scan_ravdess(tmp_path, strict=True)


def test_scanner_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        scan_ravdess(tmp_path / "nope")
    with pytest.raises(DatasetError, match="no RAVDESS clips"):
        scan_ravdess(tmp_path)


def test_labelled_folder(tmp_path):
    (tmp_path / "a.wav").write_bytes(encode(tone(), SR, "WAV"))
    (tmp_path / "b.wav").write_bytes(encode(tone(), SR, "WAV"))
    (tmp_path / "labels.csv").write_text(
        "path,emotion,speaker\na.wav,Angry,u1\nb.wav,sad,\n../outside.wav,sad,u1\nmissing.wav,sad,u1\na.wav,bored,u1\n"
    )
    rep = load_labelled_folder(tmp_path)
    assert [(c.path.name, c.emotion, c.speaker) for c in rep.clips] == [
        ("a.wav", "angry", "u1"),
        ("b.wav", "sad", "unknown"),
    ]
    assert sorted(r for _, r in rep.skipped) == [
        "file not found",
        "path outside the folder",
        "unknown emotion 'bored'",
    ]


def test_labelled_folder_needs_header(tmp_path):
    (tmp_path / "labels.csv").write_text("file,label\n")
    with pytest.raises(DatasetError, match="path,emotion"):
        load_labelled_folder(tmp_path)


@pytest.mark.ravdess
def test_real_ravdess_is_complete(ravdess_dir):
    rep = scan_ravdess(ravdess_dir, strict=True)
    assert len(rep.clips) == 1440 and len(rep.speakers) == 24 and not rep.skipped
    counts = {e: sum(c.emotion == e for c in rep.clips) for e in {c.emotion for c in rep.clips}}
    assert counts["neutral"] == 96 and all(v == 192 for k, v in counts.items() if k != "neutral")


@pytest.mark.ravdess
@pytest.mark.slow
def test_quick_training_on_ravdess_subset_beats_chance(ravdess_dir):
    """Train on 8 actors, test on 4 unseen actors, 4 well-separated emotions: far above 25 % chance."""
    from ser_core.cache import extract_files
    from ser_core.presets import get_preset
    from ser_core.train import MLPParams, fit

    emos = {"neutral", "angry", "sad", "happy"}
    clips = [
        c
        for c in scan_ravdess(ravdess_dir).clips
        if c.emotion in emos
        and int(c.speaker) <= 12
        and c.intensity == "02"
        or c.emotion == "neutral"
        and int(c.speaker) <= 12
    ]
    cfg = get_preset("rich")
    X = extract_files([c.path for c in clips], cfg, progress=False)
    y = np.array([c.emotion for c in clips])
    test = np.array([int(c.speaker) > 8 for c in clips])
    model = fit(X[~test], y[~test], features=cfg, params=MLPParams(hidden=(64, 32), max_iter=150))
    acc = (np.array(model.labels)[model.predict_proba(X[test]).argmax(1)] == y[test]).mean()
    assert acc > 0.5, acc


def test_a_ravdess_folder_is_the_ravdess_corpus_whatever_it_is_called(tmp_path):
    """Its clips say "ravdess", and training must look for them under that name: training on a RAVDESS folder
    named otherwise once looked for the folder's name, found no clip and crashed."""
    from ser_core.datasets import clip_corpus, corpus_name, load_corpora

    scan = tmp_path / "Audio_Speech_Actors_01-24"
    _touch(scan, "Actor_01/03-01-05-02-01-01-01.wav")
    assert clip_corpus(scan) == "ravdess" and {c.corpus for c in scan_ravdess(scan).clips} == {"ravdess"}
    labelled = tmp_path / "RAVDESS"
    labelled.mkdir()
    (labelled / "labels.csv").write_text("path,emotion,speaker\n")
    assert clip_corpus(labelled) == "ravdess" and clip_corpus(tmp_path / "EmoDB") == "emodb"
    # Licences go by the folder's own name: a SAVEE folder is refused for training before anything is read.
    assert corpus_name(tmp_path / "SAVEE") == "savee"
    with pytest.raises(DatasetError, match="both named 'ravdess'"):
        load_corpora([scan, labelled])
