"""Latency per clip: the product's path against the soundfile floor, the classic librosa recipe and pydub.

Columns (all median ms, measured round-robin in one run):

- ``floor``: ``soundfile.read`` of the bytes alone, at the file's own rate (no resampling, no features);
- ``classic``: ``librosa.load(path, sr=None)`` + mean of 40 MFCCs at the file's rate;
- ``pydub``: ``pydub.AudioSegment.from_file(path, format, codec)`` → float32 numpy, through the same ffmpeg the
  product uses (system or imageio-ffmpeg's). The container and decoder are named, so pydub skips its ffprobe call,
  which a pip-only install lacks; WAV is read natively;
- ``product``: ``model.predict(bytes)`` — decode to 16 kHz, the model's features (+ timeline for ≥ 6 s), the MLP.

The breakdown splits the product's path: decode at the file's rate, resample to 16 kHz (soxr), features
(``predict_signal`` minus the model, so it includes the timeline windows of long clips) and predict.
"""

from __future__ import annotations

import io
import resource
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from ser_core.audio import decode, ffmpeg_exe
from ser_core.features import extract

from .clips import CASES, LONG_NOTE, RATE, VOICE_NOTE, make_clips
from .common import bench_model, goal, interleaved, percentile, ravdess_dir, table

GOAL_P95_MS = {VOICE_NOTE: 60.0, LONG_NOTE: 600.0}  # with the speech encoder (issue 11)
GOAL_PYDUB_SPEEDUP = 8.0  # product ≥ 8 × faster than pydub for the voice note


def _soundfile(data: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(data), dtype="float32")[0]


def _classic(path: Path) -> np.ndarray:
    import librosa

    with warnings.catch_warnings():  # librosa warns when it falls back to audioread (M4A)
        warnings.simplefilter("ignore")
        y, sr = librosa.load(path, sr=None)
    return librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).mean(axis=1)


#: file suffix → (ffmpeg demuxer, ffmpeg decoder) named to pydub, so that it never runs ffprobe.
PYDUB_FORMATS = {
    ".ogg": ("ogg", "opus"),
    ".mp3": ("mp3", "mp3"),
    ".m4a": ("mp4", "aac"),
    ".wav": ("wav", None),
}


def _audio_segment() -> type:
    with warnings.catch_warnings():  # pydub warns at import when no ffmpeg is on PATH; _pydub names ours
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment
    return AudioSegment


def _pydub(path: Path, ffmpeg: str) -> np.ndarray:
    """``path`` decoded by pydub with ``ffmpeg`` as its converter, as float32 in [-1, 1]."""
    AudioSegment = _audio_segment()
    AudioSegment.converter = ffmpeg
    fmt, codec = PYDUB_FORMATS[path.suffix]
    seg = AudioSegment.from_file(path, format=fmt, codec=codec)
    return np.array(seg.get_array_of_samples(), dtype=np.float32) / float(1 << (8 * seg.sample_width - 1))


def pydub_available() -> str | None:
    """Why the pydub column cannot be measured here, or None when it can."""
    try:
        _audio_segment()
    except ImportError:
        return "pydub is not installed (pip install -e '.[bench]')"
    if ffmpeg_exe() is None:
        return "no ffmpeg (neither on PATH nor from the imageio-ffmpeg wheel)"
    return None


def _working(fn):
    """``fn`` if one call succeeds, else None: a baseline that cannot read a format here is left out, not fatal."""
    try:
        fn()
        return fn
    except Exception:  # e.g. librosa's audioread fallback finds no system ffmpeg for M4A
        return None


def measure(path: Path, model, reps: int) -> dict:
    """Median ms of every column and breakdown step for one file."""
    data = path.read_bytes()
    ffmpeg = ffmpeg_exe()
    y_in = decode(data, sr=RATE, check_silence=False)
    y16 = soxr.resample(y_in, RATE, model.features.sr)
    X = np.atleast_2d(extract(y16, model.features))
    methods = {
        "floor": _working(lambda: _soundfile(data)),
        "classic": _working(lambda: _classic(path)),
        "pydub": _working(lambda: _pydub(path, ffmpeg)) if ffmpeg and pydub_available() is None else None,
        "product": lambda: model.predict(data),
        "decode": lambda: decode(data, sr=RATE, check_silence=False),
        "resample": lambda: soxr.resample(y_in, RATE, model.features.sr),
        "analyse": lambda: model.predict_signal(y16),
        "predict": lambda: model.predict_proba(X),
    }
    ms = interleaved({k: f for k, f in methods.items() if f is not None}, reps)
    ms["features"] = ms.pop("analyse") - ms["predict"]
    for baseline in ("floor", "classic", "pydub"):
        ms.setdefault(baseline, None)
    ms["bytes"] = len(data)
    return ms


def run(reps: int = 15, cases: dict = CASES, model_path: str | None = None) -> dict:
    """Every case of ``cases``; clips of 30 s or more get a third of the repetitions (at least 3)."""
    model, model_desc = bench_model(model_path)
    with tempfile.TemporaryDirectory(prefix="ser-bench-") as tmp:
        paths, source = make_clips(Path(tmp), ravdess_dir(), cases)
        rows = {
            name: measure(p, model, reps if cases[name][2] < 30 else max(3, reps // 3))
            for name, p in paths.items()
        }
        # Tail latency of the whole path, one call at a time after the round-robin runs (caches warm).
        for name, limit in GOAL_P95_MS.items():
            if name in paths:
                data = paths[name].read_bytes()
                times = []
                for _ in range(max(reps, 20) if limit < 100 else max(5, reps // 2)):
                    t0 = time.perf_counter()
                    model.predict(data)
                    times.append((time.perf_counter() - t0) * 1000)
                rows[name]["product_p95"] = percentile(times, 95)
    for r in rows.values():
        r["product_over_floor"] = r["product"] / r["floor"] if r["floor"] else None
        r["pydub_over_product"] = r["pydub"] / r["product"] if r["pydub"] else None
        r["pydub_over_decode"] = r["pydub"] / (r["decode"] + r["resample"]) if r["pydub"] else None
    vn = rows.get(VOICE_NOTE, {})
    pydub_ok = vn["pydub_over_product"] >= GOAL_PYDUB_SPEEDUP if vn.get("pydub_over_product") else None
    goals = {
        f"p95 {n} ≤ {v:.0f} ms": rows[n]["product_p95"] <= v for n, v in GOAL_P95_MS.items() if n in rows
    }
    goals["voice_note_8x_faster_than_pydub"] = pydub_ok
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "reps": reps,
        "model": model_desc,
        "audio": source,
        "cases": rows,
        "goals": goals,
        "peak_rss_mib": round(rss, 1),
        "pydub_unavailable": pydub_available(),
    }


def report(r: dict) -> str:
    cases = {
        n: r["cases"][n] for n in sorted(r["cases"], key=lambda n: list(CASES).index(n) if n in CASES else 99)
    }
    main = table(
        [
            "clip",
            "bytes",
            "floor: soundfile",
            "classic: librosa+MFCC",
            "pydub+ffmpeg",
            "product: predict",
            "product ÷ floor",
            "pydub ÷ product",
        ],
        [
            [
                n,
                c["bytes"],
                c["floor"],
                c["classic"],
                c["pydub"],
                c["product"],
                c["product_over_floor"],
                c["pydub_over_product"],
            ]
            for n, c in cases.items()
        ],
    )
    steps = table(
        ["clip", "decode", "resample", "features", "predict", "sum of steps", "pydub ÷ (decode + resample)"],
        [
            [
                n,
                c["decode"],
                c["resample"],
                c["features"],
                c["predict"],
                c["decode"] + c["resample"] + c["features"] + c["predict"],
                c["pydub_over_decode"],
            ]
            for n, c in cases.items()
        ],
    )
    vn = cases.get(VOICE_NOTE, {})
    g = r["goals"]
    lines = [
        f"Latency per clip, median ms over {r['reps']} round-robin repetitions (30 s clip: fewer); "
        f"audio: {r['audio']}; model: {r['model']}.",
        "",
        main,
        "",
        "Breakdown of the product's path (median ms):",
        "",
        steps,
        "",
        *(
            []
            if vn.get("pydub")
            else [f"- pydub: unavailable here ({r.get('pydub_unavailable') or 'it failed on this clip'})"]
        ),
        "- — in a baseline column: that library cannot read this format on this machine (librosa reads M4A "
        "only through a system ffmpeg); the product's column never is.",
        *(
            goal(ok, f"{k} (measured {cases[k.split(' ≤')[0][4:]].get('product_p95', 0):.0f} ms)")
            for k, ok in g.items()
            if k.startswith("p95")
        ),
        f"- the voice note takes {_x(vn.get('product_over_floor'))} the decode floor (the encoder's share: see the "
        "breakdown); peak RSS of this process " + f"{r.get('peak_rss_mib', 0):.0f} MiB",
        goal(
            g["voice_note_8x_faster_than_pydub"],
            f"product ≥ {GOAL_PYDUB_SPEEDUP:.0f}× faster than pydub for the "
            f"voice note (measured {_x(vn.get('pydub_over_product'))}; decoding alone: "
            f"{_x(vn.get('pydub_over_decode'))} faster than pydub)",
        ),
    ]
    return "\n".join(lines)


def _x(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"
