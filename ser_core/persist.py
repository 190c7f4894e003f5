"""Files that are either whole or absent: the one atomic write every saver in the project goes through; and
the model file.

A model is its arrays and JSON (feature settings, card, heads) in one ``.npz`` file. ``np.load(...,
allow_pickle=False)`` cannot execute code, so a model file from anywhere is safe to load; a checksum over the
arrays catches corruption and casual tampering, and shape checks catch files from an incompatible version.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import io
import json
import os
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np

from .adapt import AdaptConfig
from .errors import ModelError
from .features import FEATURE_VERSION, FeatureConfig
from .network import Classifier, Network

FORMAT = "ser-model"
FORMAT_VERSION = 1


def atomic_write(
    path: str | os.PathLike, data: bytes, *, durable: bool = False, prefix: str = ".tmp-"
) -> Path:
    """Write ``data`` to ``path`` through a temp file in the same folder and ``os.replace``, so a reader, or a
    process killed at any moment, sees the old file or the new one, never half of one. ``durable`` also
    fsyncs before the rename (for what must survive a power cut: models, the live-model pointer). The folder
    is created; a failed write leaves no temp file behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --------------------------------------------------------------------------------------------- model file


def _arrays(model: Classifier) -> dict[str, np.ndarray]:
    arrays = {"scaler_mean": model.scaler_mean, "scaler_scale": model.scaler_scale}
    for k, net in enumerate(model.networks):
        for i, (W, b) in enumerate(zip(net.weights, net.biases, strict=True)):
            arrays[f"net{k}_W{i}"] = W
            arrays[f"net{k}_b{i}"] = b
    if model.adapt_head is not None and model.class_means is not None:
        arrays["adapt_means"] = model.class_means
        arrays.update({f"adp_{k}": v for k, v in _arrays(model.adapt_head).items()})
    return {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in arrays.items()}


def _meta(model: Classifier, arrays: dict[str, np.ndarray]) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "labels": list(model.labels),
        "features": model.features.to_dict(),
        "n_networks": len(model.networks),
        "n_layers": len(model.networks[0].weights),
        "temperature": model.temperature,
        "checksum": _checksum(arrays),
        "card": model.card,
        "unsure_below": model.unsure_below,
        "adapt_head": None
        if model.adapt_head is None
        else {
            "n_networks": len(model.adapt_head.networks),
            "n_layers": len(model.adapt_head.networks[0].weights),
            "temperature": model.adapt_head.temperature,
            "config": model.adapt.to_dict(),
        },
    }


def save_model(model: Classifier, path: str | os.PathLike) -> Path:
    """Write the model atomically and durably (``persist.atomic_write``)."""
    if "version" not in model.card:
        now = _dt.datetime.now(_dt.timezone.utc)
        model.card["version"] = f"{now:%Y%m%d-%H%M%S}-{os.urandom(2).hex()}"  # unique within a second
    arrays = _arrays(model)
    meta = json.dumps(_meta(model, arrays), sort_keys=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(meta), **arrays)
    return atomic_write(path, buf.getvalue(), durable=True, prefix=f".{Path(path).name}.")


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype=np.float32)
        h.update(name.encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def default_model_path() -> Path:
    """Path of the model that ships inside the package."""
    return Path(str(resources.files("ser_core") / "models" / "default.npz"))


def load_model(path: str | os.PathLike | None = None, *, cls: type[Classifier] = Classifier) -> Classifier:
    """Load a model file (``None``: the shipped default) as a ``cls`` (``ser_core.model.load_model``: a
    ``Model``). Raises ``ModelError`` with the reason."""
    path = Path(path) if path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as exc:
        if "pickle" in str(exc).lower() and zipfile.is_zipfile(path):
            raise ModelError(f"{path} holds pickled objects; refusing to load it (not a ser model)") from None
        raise ModelError(f"{path} is not a ser model file") from None
    except Exception as exc:  # zipfile.BadZipFile, OSError, EOFError ...: all mean "not a model file"
        raise ModelError(f"{path} is not a ser model file or is damaged ({type(exc).__name__})") from None
    # np.load hands back a member that is not a .npy file as raw bytes; such a file is not a model.
    if not all(isinstance(a, np.ndarray) for a in arrays.values()):
        raise ModelError(f"{path} is not a ser model file (it holds non-array members)")
    if "meta" not in arrays or arrays["meta"].dtype.kind != "U":
        raise ModelError(f"{path} is not a ser model file (no metadata)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise ModelError(f"{path} has unreadable metadata; the file is damaged") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{path} is not a ser model file")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{path} has model format {meta.get('format_version')}; this ser_core reads {FORMAT_VERSION}. "
            "Retrain the model or upgrade ser_core."
        )
    if _checksum(arrays) != meta.get("checksum"):
        raise ModelError(
            f"{path} failed its checksum: the file was modified or damaged. Retrain or restore it."
        )
    try:
        features = FeatureConfig.from_dict(meta["features"])
        labels = tuple(meta["labels"])
        model = _head(arrays, "", meta, labels, features, cls)
        model.card = dict(meta.get("card", {}))
        model.unsure_below = float(meta.get("unsure_below", 0.0))
        # An older file's "speaker_head" (z-scored by a profile's own statistics) is not used: its profiles
        # are not kept either, and such a model answers cold.
        adp = meta.get("adapt_head")
        if adp:
            model.adapt_head = _head(arrays, "adp_", adp, labels, features, cls)
            model.class_means = arrays["adapt_means"].astype(np.float64)
            model.adapt = AdaptConfig.from_dict(adp["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path} is incomplete or from an incompatible version ({exc})") from None
    _validate(model, path)
    return model


def _head(
    arrays: dict,
    prefix: str,
    meta: dict,
    labels: tuple[str, ...],
    features: FeatureConfig,
    cls: type[Classifier],
) -> Classifier:
    networks = [
        Network(
            [arrays[f"{prefix}net{k}_W{i}"].astype(np.float64) for i in range(int(meta["n_layers"]))],
            [arrays[f"{prefix}net{k}_b{i}"].astype(np.float64) for i in range(int(meta["n_layers"]))],
        )
        for k in range(int(meta["n_networks"]))
    ]
    return cls(
        labels=labels,
        features=features,
        scaler_mean=arrays[f"{prefix}scaler_mean"].astype(np.float64),
        scaler_scale=arrays[f"{prefix}scaler_scale"].astype(np.float64),
        networks=networks,
        temperature=float(meta.get("temperature", 1.0)),
    )


def _validate(model: Classifier, path: Path) -> None:
    if model.features.encoder:
        from . import encoder

        if model.features.encoder not in encoder.ENCODERS:
            raise ModelError(
                f"{path.name} needs a speech encoder this ser_core does not know "
                f"({model.features.encoder!r}); upgrade ser_core"
            )
        spec = encoder.ENCODERS[model.features.encoder]
        if not encoder.available(spec.name):
            raise ModelError(
                f"{path.name} needs the {spec.name} speech encoder, which is not installed: run "
                f"{spec.install} (and pip install ctranslate2)"
            )
    if model.features.version != FEATURE_VERSION:
        raise ModelError(
            f"{path} was trained on feature version {model.features.version}; this ser_core computes version "
            f"{FEATURE_VERSION}. Retrain it with `ser train`."
        )
    if model.adapt_head is not None:
        _validate(model.adapt_head, path)
        means = model.class_means
        if (
            means is None
            or means.shape != (len(model.labels), model.scaler_mean.size)
            or not np.isfinite(means).all()
        ):
            raise ModelError(f"{path}: bad class means for the adapted head")
        if not (model.adapt.tau >= 0 and model.adapt.w_ref > 0 and model.adapt.min_evidence >= 0):
            raise ModelError(f"{path}: bad adaptation settings {model.adapt}")
    if not 0 <= model.unsure_below < 1:
        raise ModelError(f"{path}: implausible 'not sure' threshold {model.unsure_below}")
    d = model.features.dim
    if model.scaler_mean.shape != (d,) or model.scaler_scale.shape != (d,):
        raise ModelError(f"{path}: scaler has {model.scaler_mean.shape} values, features have {d}")
    if not model.labels or len(set(model.labels)) != len(model.labels):
        raise ModelError(f"{path}: bad class labels {model.labels}")
    if not 0.05 <= model.temperature <= 20:
        raise ModelError(f"{path}: implausible temperature {model.temperature}")
    for net in model.networks:
        n_in = d
        for W, b in zip(net.weights, net.biases, strict=True):
            if W.ndim != 2 or W.shape[0] != n_in or b.shape != (W.shape[1],):
                raise ModelError(f"{path}: layer shapes do not chain ({W.shape}, {b.shape})")
            n_in = W.shape[1]
        if n_in != len(model.labels):
            raise ModelError(f"{path}: output layer has {n_in} units for {len(model.labels)} classes")
        if not all(np.isfinite(a).all() for a in (*net.weights, *net.biases)):
            raise ModelError(f"{path}: weights contain NaN or infinity")
    if not (np.isfinite(model.scaler_mean).all() and (model.scaler_scale > 0).all()):
        raise ModelError(f"{path}: bad scaler values")
