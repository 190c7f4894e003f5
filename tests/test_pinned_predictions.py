"""The shipped model's answers on the demo clips, pinned: a change that is meant to move no number (a re-layout,
a refactor of decoding, features or the heads) must leave these as they are.

The encoder runs in int8 and CTranslate2 picks its kernels by the CPU, so the features move with the machine:
the same code answered angry 48.4 % on an Intel Xeon with AVX-512 VNNI and 54.1 % on an AMD EPYC. So the pins
are kept per kind of CPU (``machine()``). On a pinned kind the probabilities must agree within ``TOLERANCE``
(a busy machine once moved one by 0.005) and labels and adaptations exactly; on a kind not pinned yet, labels
and adaptations must agree with every pinned kind and the probabilities within ``OTHER_CPU_TOLERANCE`` (the
widest spread seen between kinds, 0.057, with room). Pin a new kind, from code known to be right, with
``python tests/test_pinned_predictions.py --pin``; regenerate the whole file only with a new shipped model
(``--pin --new-model``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ser_core import load_model
from ser_core.adapt import VoiceProfile

ROOT = Path(__file__).resolve().parents[1]
VOICES = ROOT / "bot" / "testing" / "voices"
PINNED = Path(__file__).parent / "pinned_predictions.json"
TOLERANCE = 0.02
OTHER_CPU_TOLERANCE = 0.1


def machine() -> str:
    """The kind of CPU: vendor and model name from /proc/cpuinfo ("unknown" where there is none)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return "unknown"
    return f"{info.get('vendor_id', 'unknown')} {info.get('model name', '')}".strip()


def pins_for(pins: dict, kind: str) -> dict | None:
    """The pins of this kind of CPU: the exact vendor and model, else the vendor alone, else None."""
    return pins.get(kind) or pins.get(kind.split(" ")[0])


def answers() -> dict:
    """Each demo clip cold, and each clip heard against a profile of the other two (one as a neutral
    reference, one as an everyday note): label, adaptation and rounded probabilities."""
    model = load_model()
    clips = sorted(VOICES.glob("*.ogg"))
    preds = {c.name: model.predict(c.read_bytes()) for c in clips}
    out: dict = {"model": model.version, "cold": {}, "adapted": {}}
    for name, p in preds.items():
        out["cold"][name] = _row(p)
        ref, note = (preds[o.name] for o in clips if o.name != name)
        profile = VoiceProfile()
        profile.add_reference(ref.features)
        profile.add_note(note.features, note.cold, model.labels)
        out["adapted"][name] = _row(model.predict((VOICES / name).read_bytes(), profile=profile))
    return out


def _row(p) -> dict:
    return {
        "label": p.label,
        "adaptation": p.adaptation,
        "probabilities": {k: round(float(v), 4) for k, v in p.probabilities.items()},
    }


@pytest.fixture(scope="module")
def now() -> dict:
    return answers()


def test_machine_kinds_are_told_apart():
    assert machine() != "unknown" or not Path("/proc/cpuinfo").exists()
    pins = {"AuthenticAMD": 1, "GenuineIntel Intel(R) Xeon(R) Processor": 2}
    assert pins_for(pins, "GenuineIntel Intel(R) Xeon(R) Processor") == 2
    assert pins_for(pins, "AuthenticAMD AMD EPYC 7B13") == 1
    assert pins_for(pins, "GenuineIntel Intel(R) Core(TM) i7") is None


@pytest.mark.parametrize("kind", ["cold", "adapted"])
def test_the_shipped_model_answers_the_demo_clips_as_pinned(now, kind):
    pinned = json.loads(PINNED.read_text())
    if now["model"] != pinned["model"]:
        pytest.fail(
            f"the shipped model is {now['model']}, the pins are of {pinned['model']}: regenerate them"
        )
    mine = pins_for(pinned["machines"], machine())
    candidates, tolerance = (
        ([mine], TOLERANCE) if mine else (pinned["machines"].values(), OTHER_CPU_TOLERANCE)
    )
    for pins in candidates:
        assert now[kind].keys() == pins[kind].keys() and len(pins[kind]) == 3
        for clip, want in pins[kind].items():
            got = now[kind][clip]
            assert got["label"] == want["label"] and got["adaptation"] == want["adaptation"], clip
            assert got["probabilities"] == pytest.approx(want["probabilities"], abs=tolerance), (
                clip,
                machine(),
            )


def test_adaptation_moves_the_answer(now):
    """The pins would not notice an adapted head that answered like the cold one."""
    assert any(now["adapted"][c]["probabilities"] != now["cold"][c]["probabilities"] for c in now["cold"])
    assert all(a["adaptation"] != "none" for a in now["adapted"].values())


def _pin(new_model: bool) -> None:
    got = answers()
    pinned = {"model": got["model"], "machines": {}} if new_model else json.loads(PINNED.read_text())
    if got["model"] != pinned["model"]:
        sys.exit(f"the shipped model is {got['model']}, the pins are of {pinned['model']}: use --new-model")
    pinned["machines"][machine()] = {"cold": got["cold"], "adapted": got["adapted"]}
    PINNED.write_text(json.dumps(pinned, indent=1) + "\n")
    print(f"pinned {machine()!r} in {PINNED}")


if __name__ == "__main__":
    if "--pin" in sys.argv:
        _pin("--new-model" in sys.argv)
    else:
        json.dump(answers(), sys.stdout, indent=1)
        sys.stdout.write("\n")
