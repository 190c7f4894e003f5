"""Voice-activity rule on real and noise-only audio: false "no speech" calls and trimming.

    python -m bench.vad            # about 8 minutes on one core

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

CONDITIONS = ("clean", "discord", "noisy20", "noisy10")
OUT = Path(__file__).parent / "out"


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("SER_RAVDESS_DIR"))
    args = ap.parse_args()
    if not args.data:
        raise SystemExit("vad: needs the RAVDESS folder: set SER_RAVDESS_DIR or pass --data")
    out = run(args.data)
    print(summary(out))
    OUT.mkdir(exist_ok=True)
    (OUT / "vad.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main()
