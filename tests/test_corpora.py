"""Several corpora at once, and leave-one-corpus-out: no clip of a held-out corpus is ever trained on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from synth import SR, tone

from ser_core import DatasetError
from ser_core.audio import encode
from ser_core.datasets import load_corpora
from ser_core.workflow import Dataset, evaluate_corpora, load_features, train_model

EMOS = ("neutral", "happy", "sad", "angry")


def _corpus(root: Path, name: str, emotions=EMOS, speakers=("01", "02", "03"), base: float = 120.0) -> Path:
    """A labelled folder of synthetic 'voices': each emotion its own pitch, each speaker a small offset."""
    d = root / name
    d.mkdir()
    rows = ["path,emotion,speaker"]
    for s_i, spk in enumerate(speakers):
        for e_i, emo in enumerate(emotions):
            for take in range(2):
                rel = f"{spk}/{emo}{take}.wav"
                (d / spk).mkdir(exist_ok=True)
                y = tone(base * (1 + 0.35 * e_i) + 4 * s_i + take, 0.8, vibrato=0.01 * (e_i + 1), seed=take)
                (d / rel).write_bytes(encode(y, SR, "WAV"))
                rows.append(f"{rel},{emo},{spk}")
    (d / "labels.csv").write_text("\n".join(rows) + "\n")
    return d


@pytest.fixture(scope="module")
def corpora(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corpora")
    return {
        "alpha": _corpus(root, "alpha"),
        "beta": _corpus(root, "beta", emotions=("neutral", "happy", "sad"), base=130.0),
        # Named like the evaluation-only corpus: it may be measured on, never trained on.
        "savee": _corpus(root, "savee", speakers=("DC", "JE"), base=125.0),
    }


def test_corpora_merge_without_speaker_collisions(corpora):
    rep = load_corpora([corpora["alpha"], corpora["beta"]])
    assert rep.speakers == ["alpha:01", "alpha:02", "alpha:03", "beta:01", "beta:02", "beta:03"]
    ds = load_features([corpora["alpha"], corpora["beta"]], _seed(), progress=None, n_jobs=1)
    assert set(ds.groups) == set(rep.speakers)
    assert ds.description["corpora"]["beta"]["n_speakers"] == 3
    assert ds.description["corpora"]["beta"]["may_train"] is True


def test_two_folders_with_one_corpus_name_are_refused(corpora, tmp_path):
    other = _corpus(tmp_path, "alpha")
    with pytest.raises(DatasetError, match="both named 'alpha'"):
        load_corpora([corpora["alpha"], other])


def test_leave_one_corpus_out_never_trains_on_the_held_out_corpus(corpora, monkeypatch):
    ds = load_features(list(corpora.values()), _seed(), n_jobs=1)
    seen: list[set[str]] = []
    original = Dataset.training_set

    def spy(self, rows):
        seen.append({str(self.clips[i].path) for i in rows})
        return original(self, rows)

    monkeypatch.setattr(Dataset, "training_set", spy)
    res = evaluate_corpora(ds, "seed", calibrate=False)
    # savee may not train, so it is held out against alpha + beta; alpha and beta are held out in turn.
    assert list(res) == ["alpha", "beta", "savee"]
    paths = {c: {str(p.path) for p in ds.clips if p.corpus == c} for c in corpora}
    # The three held-out models are fitted side by side, so in no set order: one training set each.
    assert sorted(map(sorted, seen)) == sorted(
        map(sorted, [paths["beta"], paths["alpha"], paths["alpha"] | paths["beta"]])
    )
    assert all(not trained & paths["savee"] for trained in seen), "an evaluation-only corpus was trained on"
    assert res["savee"].folds[0]["trained_on"] == ["alpha", "beta"]
    # beta has no angry: scoring beta's held-out clips is over its three classes, and alpha scored without the
    # class beta lacks when beta alone trains.
    assert res["beta"].labels == ("neutral", "happy", "sad")
    assert res["alpha"].folds[0]["left_out_classes"] == ["angry"]
    assert res["alpha"].n_files == 18
    for sc in res.values():
        assert 0.0 <= sc.accuracy <= 1.0 and sc.confusion.sum() == sc.n_files
    # Calibrating each held-out model fits more models, on speaker folds of its training corpora only.
    seen.clear()
    calibrated = evaluate_corpora(ds, "seed", test=["savee"])
    assert len(seen) > 1 and all(trained and not trained & paths["savee"] for trained in seen)
    assert calibrated["savee"].folds[0]["temperature"] != 1.0


def test_training_refuses_an_evaluation_only_corpus(corpora):
    with pytest.raises(DatasetError, match="evaluation only"):
        train_model([corpora["alpha"], corpora["savee"]], preset="seed", protocols=(), n_jobs=1)


def test_trained_model_measures_on_test_data_but_fits_without_it(corpora, monkeypatch):
    from ser_core import experiments, training

    fitted: list[int] = []
    original = training.fit_adaptive
    for where in (experiments, training):
        monkeypatch.setattr(
            where, "fit_adaptive", lambda X, *a, **k: fitted.append(len(X)) or original(X, *a, **k)
        )
    model = train_model(
        [corpora["alpha"], corpora["beta"]],
        preset="seed",
        protocols=(),
        test_data=[corpora["savee"]],
        n_jobs=1,
        calibrate_model=False,
    )
    # the final model: alpha's and beta's clips, none of savee's 16; the held-out models and their
    # calibration folds fit parts of those
    assert fitted[-1] == 24 + 18 and max(fitted) == 24 + 18
    assert {"corpora:alpha", "corpora:beta", "corpora:savee"} <= set(model.card["scores"])
    assert model.card["data"]["test_only"] == ["savee"]
    assert set(model.card["data"]["corpora"]) == {"alpha", "beta"}
    from ser_core.workflow import card_markdown

    md = card_markdown(model)
    assert "leave one corpus out" in md and "| savee | alpha + beta |" in md
    # The held-out models were calibrated like a shipped one: their calibration error is on the card.
    savee_row = next(line for line in md.splitlines() if line.startswith("| savee |"))
    assert "calibration error (ECE)" in md and float(savee_row.rstrip(" |").rsplit("|", 1)[1]) >= 0


def _seed():
    from ser_core.presets import get_preset

    return get_preset("seed")


@pytest.mark.corpora
def test_real_corpora_merge(corpora_dir):
    rep = load_corpora([corpora_dir / "ravdess", corpora_dir / "nemo"])
    assert len(rep.clips) == 1440 + 4481
    assert len(rep.speakers) == 24 + 9
    assert np.all([":" in s for s in rep.speakers])


@pytest.mark.corpora
@pytest.mark.parametrize("corpus", ["savee", "emodb"])
def test_shipped_model_hears_emotion_in_corpora_it_never_heard(corpora_dir, corpus):
    """Every sixth clip of an evaluation-only corpus, predicted by the shipped model restricted to the corpus's
    classes: far above chance (1/6 or 1/7). The model card records the full numbers."""
    from ser_core import load_model
    from ser_core.datasets import load_dataset

    model = load_model()
    assert corpus not in model.card["data"]["corpora"] and corpus in model.card["data"]["test_only"]
    clips = load_dataset(corpora_dir / corpus).clips[::6]
    classes = sorted({c.emotion for c in clips} & set(model.labels))
    hits = 0
    for c in clips:
        p = model.predict(c.path).probabilities
        hits += max(classes, key=p.__getitem__) == c.emotion
    assert hits / len(clips) > 0.35, hits / len(clips)


def test_cli_leave_one_corpus_out_and_refusal(corpora, capsys, tmp_path):
    import json

    from ser_core.cli import main

    a, b, s = (str(corpora[k]) for k in ("alpha", "beta", "savee"))
    assert (
        main(
            [
                "evaluate",
                "--protocol",
                "corpora",
                "--data",
                a,
                "--data",
                b,
                "--test-data",
                s,
                "--preset",
                "seed",
                "--json",
                "-q",
                "--jobs",
                "1",
                "--confusion",
                str(tmp_path / "cm.png"),
            ]
        )
        == 0
    )
    res = json.loads(capsys.readouterr().out)
    assert set(res["corpora"]) == {"alpha", "beta", "savee"}
    assert (tmp_path / "cm-savee.png").read_bytes().startswith(b"\x89PNG")
    assert (
        main(["train", "--data", a, "--data", s, "--preset", "seed", "-q", "--out", str(tmp_path / "m.npz")])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "evaluation only" in err and "\n" not in err
    assert main(["evaluate", "--data", a, "--test-data", s, "--preset", "seed", "-q"]) == 2
    assert "--test-data goes with --protocol corpora" in capsys.readouterr().err


def test_bad_corpus_options_are_refused(corpora, capsys):
    from ser_core import ConfigError
    from ser_core.cli import main
    from ser_core.train import MLPParams, balance_weights, fit

    ds = load_features([corpora["alpha"], corpora["beta"]], _seed(), n_jobs=1)
    with pytest.raises(ConfigError, match="no corpus 'gamma' in the data; the data holds alpha, beta"):
        evaluate_corpora(ds, "seed", test=["gamma"])
    with pytest.raises(ConfigError, match="unknown balance 'speaker'"):
        balance_weights(ds.y, ds.groups, "speaker")
    with pytest.raises(ConfigError, match="corpus-class' needs the rows' groups"):
        balance_weights(ds.y, None, "corpus-class")
    with pytest.raises(ConfigError, match="unknown head 'svm'; choose mlp or logreg"):
        fit(ds.X, ds.y, features=_seed(), params=MLPParams(head="svm"))
    # One corpus that may train, nothing to hold out against it: one line, exit 2.
    assert (
        main(["evaluate", "--protocol", "corpora", "--data", str(corpora["savee"]), "--preset", "seed", "-q"])
        == 2
    )
    assert "at least two corpora" in capsys.readouterr().err


def _train_counting_fits(corpora, monkeypatch, **options) -> tuple[list[int], object]:
    """``train_model`` on alpha + beta (savee as test data, seed preset) with every ``fit`` counted: the rows
    each fit saw, and the model."""
    import ser_core.dataset as ds
    import ser_core.presets as ps
    import ser_core.train as tr

    sizes: list[int] = []
    original = tr.fit

    def counting(X, *a, **k):
        sizes.append(len(X))
        return original(X, *a, **k)

    monkeypatch.setattr(tr, "fit", counting)
    monkeypatch.setattr(ds, "fit", counting)  # Dataset.fitter's
    monkeypatch.setattr(ps, "fit", counting)  # fit_preset's
    model = train_model(
        [corpora["alpha"], corpora["beta"]],
        preset="seed",
        protocols=("actors",),
        test_data=[corpora["savee"]],
        n_jobs=1,
        **options,
    )
    return sizes, model


def test_training_fits_each_fold_once_and_calibrates_on_transfers(corpora, monkeypatch):
    """The card's unseen-speaker score and the calibration share one set of fold models; the temperature also
    sees each training corpus scored by a model trained on the other (never savee, which only tests)."""
    from ser_core.workflow import card_markdown, evaluate_dataset

    sizes, model = _train_counting_fits(corpora, monkeypatch, calibrate_corpora=False)
    # 3 speaker folds of alpha × 2 heads, one model (2 heads) per held-out corpus (alpha, beta, savee) and the
    # final 2 heads: 14. Before, the folds' cold head was fitted a second time for the card's score (17).
    assert len(sizes) == 3 * 2 + 3 * 2 + 2, sizes
    assert 24 + 18 in sizes and all(n <= 24 + 18 for n in sizes)  # savee's 16 clips never among them
    cal = model.card["calibration"]
    assert cal["fitted_on"] == ["unseen speakers (out of fold)", "alpha held out", "beta held out"]
    assert {"ece_alpha_held_out_after", "ece_beta_held_out_after"} <= set(cal)
    md = card_markdown(model)
    assert "and on each training corpus scored by a model of the others" in md
    assert f"alpha held out {cal['ece_alpha_held_out_after']:.3f}, beta held out" in md
    # Held-out models left at temperature 1 (calibrate_corpora=False) show no calibration error.
    assert next(line for line in md.splitlines() if line.startswith("| savee |")).endswith("| — |")
    # The shared folds score exactly what a separate cross-validation scores.
    monkeypatch.undo()
    ds = load_features([corpora["alpha"], corpora["beta"]], _seed(), n_jobs=1)
    separate = evaluate_dataset(ds, "actors", "seed").to_dict()
    card = model.card["scores"]["actors"]
    assert card["accuracy"] == separate["accuracy"] and card["confusion"] == separate["confusion"]
    assert card["folds"] == separate["folds"]


def test_held_out_calibration_reuses_the_training_folds(corpora, monkeypatch):
    """With every held-out model calibrated (``ser train``), the model held out against all the training corpora
    (savee's) takes its unseen-speaker predictions from the training run's own folds, and its temperature is
    the one a separate leave-one-corpus-out run fits."""

    sizes, model = _train_counting_fits(corpora, monkeypatch)
    # 3 folds × 2 heads, 3 held-out models × 2 heads, the folds of beta alone and alpha alone (3 each, 2 heads)
    # for their temperatures, the final 2 heads: 26 (alpha + beta's folds again would make 32).
    assert len(sizes) == 6 + 6 + 6 + 6 + 2, sizes
    monkeypatch.undo()
    ds = load_features(list(corpora.values()), _seed(), n_jobs=1)
    alone = evaluate_corpora(ds, "seed", test=["savee"])
    card = model.card["scores"]["corpora:savee"]["folds"][0]
    assert card["temperature"] == alone["savee"].folds[0]["temperature"]
