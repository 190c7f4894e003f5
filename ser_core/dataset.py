"""A data set as feature vectors: the clips of one or several corpus folders (``ser_core.datasets`` scans them),
their vectors, labels and speakers, and the augmented copies training may use (``Dataset``, ``load_features``).

What ``ser_core.experiments`` evaluates on and ``ser_core.training`` trains on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .augment import parse_augment
from .cache import extract_files
from .constants import EMOTIONS
from .datasets import Clip, clip_corpus, corpus_info, load_corpora
from .errors import ConfigError, DatasetError
from .features import FeatureConfig
from .train import MLPParams, canonical_labels, fit

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class Dataset:
    """Clips and their feature vectors ``X`` [shape=(n, d)], labels and speakers [shape=(n,)].

    ``augmented`` maps an augmentation name to the vectors of one augmented copy of every clip
    [shape=(n, d)]; they enter training only through ``training_set``, never a test part.
    """

    clips: list[Clip]
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    description: dict
    augmented: dict[str, np.ndarray] = field(default_factory=dict)
    #: The corpus of each clip [shape=(n,)] (``Clip.corpus``).
    corpora: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=str))

    @property
    def may_train(self) -> np.ndarray:
        """Whether each clip's corpus may train a model [shape=(n,), bool] (``CorpusInfo.may_train``)."""
        return np.array([corpus_info(c).may_train for c in self.corpora.tolist()], dtype=bool)

    def subset(self, rows: np.ndarray) -> Dataset:
        """The clips ``rows`` (and their augmented copies) as a dataset of their own."""
        corpora = sorted(set(self.corpora[rows].tolist()))
        desc = {
            **self.description,
            "n_clips": int(len(rows)),
            "n_speakers": len(set(self.groups[rows].tolist())),
            "classes": list(canonical_labels(self.y[rows].tolist())),
            "corpora": {c: v for c, v in self.description.get("corpora", {}).items() if c in corpora},
        }
        return Dataset(
            [self.clips[i] for i in rows],
            self.X[rows],
            self.y[rows],
            self.groups[rows],
            desc,
            {k: A[rows] for k, A in self.augmented.items()},
            self.corpora[rows],
        )

    def training_set(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(X, y, groups) to train on for the clips ``rows``: the clips plus their augmented copies. Each copy's
        group is ``"<speaker>~<augmentation>"``, so speaker normalisation treats a channel like a new voice."""
        Xs, ys, gs = [self.X[rows]], [self.y[rows]], [self.groups[rows]]
        for name, A in self.augmented.items():
            Xs.append(A[rows])
            ys.append(self.y[rows])
            gs.append(np.char.add(self.groups[rows].astype(str), f"~{name}"))
        return np.vstack(Xs), np.concatenate(ys), np.concatenate(gs)

    def fitter(self, features: FeatureConfig, params: MLPParams):
        """A ``cross_validate`` fit function over row numbers [shape=(n, 1)] of this dataset: trains on the
        training rows' ``training_set`` and predicts the test rows' clean vectors."""

        def fit_rows(rows: np.ndarray, y, groups):
            X, y, g = self.training_set(rows[:, 0])
            model = fit(X, y, features=features, params=params, groups=g)
            return lambda test_rows: model.predict_proba(self.X[test_rows[:, 0]])

        return fit_rows

    @property
    def rows(self) -> np.ndarray:
        """Row numbers [shape=(n, 1)], the ``X`` to give ``cross_validate`` together with ``fitter``."""
        return np.arange(len(self.y))[:, None]


def parse_classes(spec: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``"calm,happy,sad"`` → canonical tuple; ``ConfigError`` naming unknown classes."""
    if spec is None or spec == "" or spec == ():
        return None
    names = [s.strip().lower() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    unknown = [n for n in names if n not in EMOTIONS]
    if unknown:
        raise ConfigError(
            f"unknown class {', '.join(map(repr, unknown))}; choose from: {', '.join(EMOTIONS)}"
        )
    if len(set(names)) < 2:
        raise ConfigError("--classes needs at least two different emotions")
    return canonical_labels(names)


def load_features(
    data: str | Path | Sequence[str | Path],
    features: FeatureConfig,
    *,
    classes: tuple[str, ...] | None = None,
    extra_clips: Sequence[Clip] = (),
    progress: Progress | None = None,
    n_jobs: int | None = None,
    cache: bool = True,
    augment: Sequence[str] = (),
) -> Dataset:
    """Scan ``data`` (one folder, RAVDESS or labelled, or several corpus folders), add ``extra_clips``, extract
    (cached) features, and those of one copy of every clip per ``augment`` name.

    With one folder the groups are its speaker ids; with several they are ``"<corpus>:<speaker>"``, so two
    corpora's speaker "01" stay two people."""
    roots = [data] if isinstance(data, (str, Path)) else list(data)
    report = load_corpora(roots)
    clips = list(report.clips) + list(extra_clips)
    if classes:
        clips = [c for c in clips if c.emotion in classes]
        if not clips:
            raise DatasetError(
                f"no clips of the classes {', '.join(classes)} in {', '.join(map(str, roots))}"
            )
    cb = (lambda done, total: progress("features", done, total)) if progress else False
    X = extract_files([c.path for c in clips], features, cache_dir=cache, n_jobs=n_jobs, progress=cb)
    augmented = {}
    for name in parse_augment(tuple(augment)):
        cb = (lambda done, total, name=name: progress(f"augment:{name}", done, total)) if progress else False
        augmented[name] = extract_files(
            [c.path for c in clips],
            features,
            cache_dir=cache,
            n_jobs=n_jobs,
            progress=cb,
            desc=f"augment:{name}",
            augment=name,
        )
    y = np.array([c.emotion for c in clips])
    groups = np.array([c.group if len(roots) > 1 else c.speaker for c in clips])
    corpora = np.array([c.corpus for c in clips])
    names = list(dict.fromkeys(clip_corpus(r) for r in roots))
    desc = {
        "folder": ", ".join(Path(r).name for r in roots),
        "corpora": {
            n: {
                "n_clips": int((corpora == n).sum()),
                "n_speakers": len({g for g, c in zip(groups, corpora, strict=True) if c == n}),
                **asdict(corpus_info(n)),
            }
            for n in names
        },
        "n_clips": len(clips),
        "n_speakers": len(set(groups.tolist())),
        "n_extra_clips": len(extra_clips),
        "classes": list(canonical_labels(y.tolist())),
        "skipped": len(report.skipped),
        "augmented": list(augmented),
    }
    return Dataset(clips, X, y, groups, desc, augmented, corpora)
