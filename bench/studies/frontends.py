"""The front-end study behind the default preset: which features carry emotion across corpora.

    python -m bench.studies.frontends --data ../shared/data [--variants ...] [--jobs 2]

Every clip of ravdess/, nemo/, savee/, emodb/ is decoded once and summarised by every variant below (one pass,
stored in ``$SER_CACHE_DIR/frontends/<corpus>.npz``); then each combination is scored with the same
class-balanced logistic regression (StandardScaler, C as given):

- ``actors``: RAVDESS's six actor folds, all of nEMO in training;
- ``r->n`` / ``n->r``: trained on RAVDESS alone, scored on nEMO, and the reverse;
- ``savee`` / ``emodb``: trained on RAVDESS + nEMO (they are evaluation-only).

Predictions are restricted to the classes both sides have. The **choice** uses only the corpora that may train:
the mean of ``actors``, ``r->n`` and ``n->r``; the SAVEE and EmoDB columns are reported, never used to choose.
``--norm spk`` z-scores every speaker by their own clips first: the ceiling of a voice profile.

Variants: ``ct`` = ``compact-trim``; ``ctL`` = the same on level-normalised audio; ``tiny<k>`` / ``base<k>`` =
Whisper tiny.en / base, output of block k (0 = the last, after the final layer norm), mean + std over speech
frames; the suffix ``L`` = on level-normalised audio (``features.normalize_level``).
"""

from __future__ import annotations

import argparse
import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

VARIANTS = (
    "ct",
    "ctL",
    "tiny0",
    "tiny0L",
    "tiny2L",
    "tiny3L",
    "base0",
    "base0L",
    "base2L",
    "base3L",
    "base4L",
)
CORPORA = ("ravdess", "nemo", "savee", "emodb")


def _summaries(path: str) -> dict[str, np.ndarray]:
    """Every variant's vector of one clip."""
    from ser_core import encoder
    from ser_core.audio import decode
    from ser_core.cache import TRAIN_LIMITS
    from ser_core.features import extract, get_preset, normalize_level, with_overrides
    from ser_core.vad import speech_mask

    raw = decode(Path(path).read_bytes(), sr=16000, limits=TRAIN_LIMITS, check_silence=False)
    ct = get_preset("compact-trim")
    out = {"ct": extract(raw, ct), "ctL": extract(raw, with_overrides(ct, level_norm=True))}
    for level, y in (("", raw), ("L", normalize_level(raw, 16000))):
        speech = speech_mask(y, 16000, hop_length=160, frame_length=400)
        for v in VARIANTS:
            if not v.startswith(("tiny", "base")) or v.endswith("L") != bool(level):
                continue
            name = "whisper-tiny.en" if v.startswith("tiny") else "whisper-base"
            F = encoder.load(name, int(v[4])).encode(y)
            keep = encoder.frame_mask(speech, F.shape[0])
            out[v] = encoder.pool(F[keep] if keep.sum() >= 12 else F)
    return out


def summaries(root: Path, corpus: str, jobs: int) -> dict[str, np.ndarray]:
    """{variant: [n, d], "emotion": [n], "speaker": [n]} of one corpus, cached."""
    from ser_core.cache import default_cache_dir
    from ser_core.datasets import load_dataset

    cache = default_cache_dir() / "frontends" / f"{corpus}.npz"
    clips = load_dataset(root / corpus).clips
    if cache.is_file():
        d = dict(np.load(cache))
        if len(d["emotion"]) == len(clips) and all(v in d for v in VARIANTS):
            return d
    with ProcessPoolExecutor(jobs) as pool:
        rows = list(pool.map(_summaries, [str(c.path) for c in clips], chunksize=16))
    d = {v: np.stack([r[v] for r in rows]) for v in VARIANTS}
    d["emotion"] = np.array([c.emotion for c in clips])
    d["speaker"] = np.array([c.speaker for c in clips])
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **d)
    return d


def _features(D: dict, corpus: str, spec: str, norm: str) -> np.ndarray:
    X = np.hstack([D[corpus][v] for v in spec.split("+")]).astype(np.float64)
    if norm == "spk":
        g = D[corpus]["speaker"]
        for s in np.unique(g):
            m = g == s
            X[m] = (X[m] - X[m].mean(0)) / (X[m].std(0) + 1e-3 * X.std(0) + 1e-8)
    return X


def _fit_predict(Xtr, ytr, Xte, C: float, allowed: list[str]) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits

    sc = StandardScaler().fit(Xtr)
    with threadpool_limits(1):
        clf = LogisticRegression(C=C, class_weight="balanced", max_iter=2000).fit(sc.transform(Xtr), ytr)
    P = clf.predict_proba(sc.transform(Xte))[:, [list(clf.classes_).index(lab) for lab in allowed]]
    return np.array(allowed)[P.argmax(1)]


def score(D: dict, spec: str, norm: str, C: float) -> dict[str, float]:
    from ser_core.constants import ACTOR_FOLDS

    out = {}
    X, y, g = _features(D, "ravdess", spec, norm), D["ravdess"]["emotion"], D["ravdess"]["speaker"]
    Xn, yn = _features(D, "nemo", spec, norm), D["nemo"]["emotion"]
    hits = 0
    for fold in ACTOR_FOLDS:
        te = np.isin(g, fold)
        pred = _fit_predict(np.vstack([X[~te], Xn]), np.concatenate([y[~te], yn]), X[te], C, sorted(set(y)))
        hits += int((pred == y[te]).sum())
    out["actors"] = hits / len(y)
    for name, train, test in (
        ("r->n", ["ravdess"], "nemo"),
        ("n->r", ["nemo"], "ravdess"),
        ("savee", ["ravdess", "nemo"], "savee"),
        ("emodb", ["ravdess", "nemo"], "emodb"),
    ):
        if test not in D:
            continue
        ytr = np.concatenate([D[c]["emotion"] for c in train])
        yte = D[test]["emotion"]
        shared = sorted(set(ytr) & set(yte))
        keep = np.isin(yte, shared)
        Xtr = np.vstack([_features(D, c, spec, norm) for c in train])
        pred = _fit_predict(Xtr, ytr, _features(D, test, spec, norm)[keep], C, shared)
        out[name] = float((pred == yte[keep]).mean())
    out["choice"] = (out["actors"] + out["r->n"] + out["n->r"]) / 3
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.studies.frontends", description=__doc__.split("\n\n")[0]
    )
    ap.add_argument("--data", default=os.environ.get("SER_CORPORA_DIR"), help="folder holding the corpora")
    ap.add_argument(
        "--variants",
        default="ct,ctL,base0,base0L,tiny0L,tiny2L,tiny3L,base2L,base3L,base4L,"
        "base2L+base4L,base2L+base3L,ctL+base2L+base4L",
    )
    ap.add_argument("--norm", default="none", help="none, spk, or both (none,spk)")
    ap.add_argument("--C", default="0.01", help="inverse penalties to try, e.g. 0.1,0.01")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    if not args.data or not (Path(args.data) / "ravdess").is_dir() or not (Path(args.data) / "nemo").is_dir():
        raise SystemExit("frontends: needs --data (or SER_CORPORA_DIR) holding ravdess/ and nemo/")
    root = Path(args.data)
    D = {c: summaries(root, c, args.jobs) for c in CORPORA if (root / c).is_dir()}
    print(
        "| variant | norm | C | actors | r->n | n->r | **choice** | savee | emodb |\n|---|---|---|---|---|---|---|---|---|"
    )
    for spec, norm, C in itertools.product(
        args.variants.split(","), args.norm.split(","), map(float, args.C.split(","))
    ):
        s = score(D, spec, norm, C)
        cells = [
            f"{100 * s[k]:.1f}" if k in s else "—"
            for k in ("actors", "r->n", "n->r", "choice", "savee", "emodb")
        ]
        print(f"| {spec} | {norm} | {C:g} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
