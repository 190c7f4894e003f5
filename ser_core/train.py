"""Fitting: feature vectors + labels → ``Model`` (StandardScaler + MLPClassifier, exported to arrays)."""

from __future__ import annotations

import datetime as _dt
import platform
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from .adapt import AdaptConfig
from .constants import EMOTIONS
from .datasets import group_corpus
from .errors import ConfigError, DatasetError
from .features import FeatureConfig
from .model import Model, Network
from .parallel import run_folds


@dataclass(frozen=True)
class MLPParams:
    """Classifier settings: 2 hidden ReLU layers trained with Adam, L2 penalty ``alpha``.

    ``n_ensemble`` networks with different seeds are averaged (still an MLP, just less seed noise).
    """

    hidden: tuple[int, ...] = (256, 128)
    alpha: float = 1e-2
    learning_rate_init: float = 1e-3
    batch_size: int = 64
    max_iter: int = 200
    n_ensemble: int = 1
    #: Stop when a held-out 10 % of the *training* clips stops improving (never looks at test speakers).
    early_stopping: bool = False
    #: "mlp", or "logreg": multinomial logistic regression (no hidden layer) with inverse penalty ``C``.
    head: str = "mlp"
    C: float = 0.1
    #: Sample weights: "" none; "class": every class weighs the same; "corpus-class": every (corpus, class)
    #: cell present weighs the same, so neither a large corpus nor a class only one corpus has dominates.
    balance: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MLPParams:
        d = dict(d)
        d["hidden"] = tuple(d.get("hidden", cls.hidden))
        return cls(**d)


def balance_weights(y: np.ndarray, groups: np.ndarray | None, how: str) -> np.ndarray | None:
    """Sample weights [shape=(n,)] with mean 1 for ``MLPParams.balance``; the corpus of a row is the part of its
    group before ":" (``Clip.group``). None for no weighting."""
    if not how:
        return None
    if how not in ("class", "corpus-class"):
        raise ConfigError(f"unknown balance {how!r}; choose class or corpus-class")
    y = np.asarray(y).astype(str)
    if how == "class":
        cells = y
    else:
        if groups is None:
            raise ConfigError("balance='corpus-class' needs the rows' groups (corpus:speaker)")
        corpus = np.array([group_corpus(g) for g in np.asarray(groups).astype(str)])
        cells = np.char.add(np.char.add(corpus, "|"), y)
    _, inverse, counts = np.unique(cells, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    return w * (w.size / w.sum())


#: The classic recipe's classifier (it used a single MLP of two hidden layers).
SEED_PARAMS = MLPParams(hidden=(256, 128), alpha=1e-4, n_ensemble=1, max_iter=300)
#: Measured on the six actor folds (bench/studies/ablation.py): the ensemble of three early-stopped networks was the
#: most stable; single networks trained to 200 epochs varied by up to 25 points on one fold.
DEFAULT_PARAMS = MLPParams(early_stopping=True, n_ensemble=3)


def canonical_labels(labels) -> tuple[str, ...]:
    """Present labels in canonical order: the 8 emotions first in RAVDESS order, anything else sorted."""
    present = set(labels)
    known = [e for e in EMOTIONS if e in present]
    return tuple(known + sorted(present - set(known)))


def pipeline(params: MLPParams, seed: int, n_samples: int | None = None) -> Pipeline:
    """The scikit-learn pipeline one network is trained with."""
    if params.head == "logreg":
        # Scaled in float64, solved in float32: each L-BFGS step is two (n × d) matrix products, twice as fast
        # in single precision (a retrain's fits 13.1 → 6.8 s on 5921 × 2048; the coefficients agree to 2e-3 and
        # the training predictions on 99.98 % of rows).
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("float32", FunctionTransformer(_as_float32)),
                ("logreg", LogisticRegression(C=params.C, max_iter=3000)),
            ]
        )
    if params.head != "mlp":
        raise ConfigError(f"unknown head {params.head!r}; choose mlp or logreg")
    return Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "mlp",
                MLPClassifier(
                    hidden_layer_sizes=params.hidden,
                    activation="relu",
                    solver="adam",
                    alpha=params.alpha,
                    learning_rate_init=params.learning_rate_init,
                    batch_size=min(params.batch_size, n_samples or params.batch_size),
                    max_iter=params.max_iter,
                    early_stopping=params.early_stopping,
                    n_iter_no_change=10,
                    random_state=seed,
                ),
            ),
        ]
    )


def _warm_start(clf: LogisticRegression, scaler: StandardScaler, init: Model, encoder: LabelEncoder) -> None:
    """Start ``clf``'s L-BFGS at ``init``'s solution, carried into the space ``scaler`` (fitted) scales to.

    The penalised problem is convex with one optimum, so where it starts changes how many steps it takes, not
    where it ends (up to the solver's tolerance): the final fit of a retrain, started from a fold's model,
    takes about a third of the steps. Skipped when the classes differ or there are only two."""
    names = list(encoder.classes_)
    if sorted(init.labels) != sorted(names) or len(names) < 3 or len(init.networks[0].weights) != 1:
        return
    m1, s1 = scaler.mean_, np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    W0, b0 = init.networks[0].weights[0], init.networks[0].biases[0]  # [d, c], [c], canonical order
    # logits = ((x − m0) / s0) W0 + b0 with x = x' s1 + m1 (x' scaled here):
    W1 = W0 * (s1 / init.scaler_scale)[:, None]
    b1 = b0 + ((m1 - init.scaler_mean) / init.scaler_scale) @ W0
    order = [init.labels.index(n) for n in names]  # sklearn's outputs follow the encoder's classes
    clf.set_params(warm_start=True)
    clf.coef_, clf.intercept_ = W1[:, order].T.copy(), b1[order].copy()


def _as_float32(X: np.ndarray) -> np.ndarray:
    return np.asarray(X, dtype=np.float32)


def _export(clf, encoder: LabelEncoder, order: tuple[str, ...]) -> Network:
    """A fitted ``MLPClassifier`` or ``LogisticRegression`` as plain arrays, outputs in ``order``."""
    if isinstance(clf, LogisticRegression):
        weights, biases = [clf.coef_.T.astype(np.float64)], [clf.intercept_.astype(np.float64)]
    else:
        weights = [W.astype(np.float64) for W in clf.coefs_]
        biases = [b.astype(np.float64) for b in clf.intercepts_]
    if weights[-1].shape[1] == 1:  # binary: sklearn uses one logistic unit; softmax([0, z]) == sigmoid(z)
        weights[-1] = np.hstack([np.zeros_like(weights[-1]), weights[-1]])
        biases[-1] = np.concatenate([[0.0], biases[-1]])
    # sklearn's output unit i is encoder.classes_[clf.classes_[i]]; permute to canonical order.
    names = [encoder.classes_[c] for c in clf.classes_]
    perm = [names.index(lab) for lab in order]
    weights[-1] = weights[-1][:, perm]
    biases[-1] = biases[-1][perm]
    return Network(weights, biases)


def fit(
    X: np.ndarray,
    y: list[str] | np.ndarray,
    *,
    features: FeatureConfig,
    params: MLPParams = DEFAULT_PARAMS,
    seed: int = 0,
    card: dict | None = None,
    groups: np.ndarray | None = None,
    init: Model | None = None,
) -> Model:
    """Train on feature vectors ``X`` [shape=(n, d)] with string labels ``y`` [shape=(n,)].

    The scaler is fitted once on ``X``; each ensemble member gets seed ``seed + k``. Rows are weighed in the
    loss as ``params.balance`` says (``balance_weights``; ``groups`` [shape=(n,)] name each row's corpus for
    "corpus-class"). ``init``: a logistic head fitted on similar data to start from (``_warm_start``).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ConfigError(f"X has shape {X.shape} but there are {y.shape[0]} labels")
    if X.shape[1] != features.dim:
        raise ConfigError(f"X has {X.shape[1]} features; preset {features.preset!r} makes {features.dim}")
    order = canonical_labels(y.tolist())
    if len(order) < 2:
        raise DatasetError(f"need at least two classes to train; found only {list(order)}")
    encoder = LabelEncoder().fit(y)
    yi = encoder.transform(y)
    sample_weight = balance_weights(y, groups, params.balance)
    # The pipeline's scaling step, fitted once: every network of an ensemble (and a warm start) sees the same
    # scaled rows, so each network fits only the steps after it.
    scaler = StandardScaler().fit(X)
    Xs = scaler.transform(X)
    networks = []
    for k in range(1 if params.head == "logreg" else params.n_ensemble):
        pipe = pipeline(params, seed + k, n_samples=X.shape[0])
        # One BLAS thread: these matrices are small, and OpenBLAS's spinning worker threads make a fit 30x
        # slower (6 s → 210 s measured) as soon as another process wants the same cores.
        with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
            # A capped max_iter is deliberate (it regularises); the warning says nothing new.
            warnings.simplefilter("ignore", ConvergenceWarning)
            step = pipe.steps[-1][0]
            if init is not None and params.head == "logreg":
                _warm_start(pipe.named_steps[step], scaler, init, encoder)
            pipe[1:].fit(
                Xs, yi, **({} if sample_weight is None else {f"{step}__sample_weight": sample_weight})
            )
        networks.append(_export(pipe.steps[-1][1], encoder, order))
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    full_card = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "classifier": {
            "type": "LogisticRegression (StandardScaler, multinomial)"
            if params.head == "logreg"
            else "MLPClassifier (StandardScaler, ReLU, Adam)",
            **params.to_dict(),
            "seed": seed,
        },
        "n_train": int(X.shape[0]),
        "class_counts": {lab: int((y == lab).sum()) for lab in order},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "librosa": _librosa_version(),
        },
    }
    full_card.update(card or {})
    return Model(
        labels=order,
        features=features,
        scaler_mean=scaler.mean_.astype(np.float64),
        scaler_scale=scale.astype(np.float64),
        networks=networks,
        card=full_card,
    )


def _librosa_version() -> str:
    import librosa

    return librosa.__version__


def fit_adaptive(
    X: np.ndarray,
    y: list[str] | np.ndarray,
    groups: np.ndarray,
    *,
    features: FeatureConfig,
    params: MLPParams = DEFAULT_PARAMS,
    seed: int = 0,
    card: dict | None = None,
    init: Model | None = None,
    adapt: AdaptConfig | None = None,
) -> Model:
    """``fit`` plus the adapted head (``ser_core.adapt``): a second classifier of ``x - offset``, each training
    row's offset drawn from a context of its own speaker's (``groups``) other clips as a profile would hold
    them. Those clips' class probabilities are their true labels: a profile's notes come with the cold head's
    probabilities, which on training speakers are too sure to stand in for a new voice's. Both heads are
    weighted as ``params.balance`` says; ``init`` (a model with both) is where each head's fit starts.

    The returned model answers cold by default and with the adapted head for a ``VoiceProfile`` with enough
    evidence (``AdaptConfig.min_evidence``).
    """
    from . import adapt as adaptation

    cfg = adapt or adaptation.AdaptConfig()
    y = np.asarray(y)
    groups = np.asarray(groups)
    if len(set(groups.tolist())) < 2:  # one speaker: nothing to learn across voices
        return fit(X, y, features=features, params=params, seed=seed, card=card, groups=groups, init=init)
    labels = canonical_labels(y.tolist())
    truth = (y[:, None] == np.array(labels)[None, :]).astype(np.float64)
    means = adaptation.class_means(X, y, labels)
    offsets = adaptation.training_offsets(X, y, groups, truth, means, labels, cfg, seed=seed)
    # The two heads are independent fits: side by side.
    model, head = run_folds(
        lambda task: fit(
            task[0], y, features=features, params=params, seed=seed, card=task[1], groups=groups, init=task[2]
        ),
        [(X, card, init), (np.asarray(X, dtype=np.float64) - offsets, None, init and init.adapt_head)],
    )
    model.adapt_head = head
    model.class_means = means
    model.adapt = cfg
    return model
