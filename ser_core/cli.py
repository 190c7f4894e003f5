"""``ser``: train, evaluate, predict, info.

Exit codes: 0 success; 2 bad input or usage (one line on stderr, no traceback); 1 an unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import numpy as np

from .errors import ConfigError, SerError
from .presets import DEFAULT_PRESET, PRESETS, preset_augment, preset_parts

log = logging.getLogger("ser")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints usage + message by default)
        self.exit(2, f"{self.prog}: error: {message}\n")


def _progress_printer(enabled: bool):
    """A (stage, done, total) callback drawing one tqdm bar per stage on stderr."""
    if not enabled:
        return None
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def cb(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="step", leave=False, dynamic_ncols=True)
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return cb


def _data_dir(arg: list[str] | None) -> str | list[str]:
    """The ``--data`` folders (one stays a plain path), else ``$SER_RAVDESS_DIR``."""
    data = arg or ([os.environ["SER_RAVDESS_DIR"]] if os.environ.get("SER_RAVDESS_DIR") else [])
    if not data:
        raise SerError("no data folder: pass --data DIR or set SER_RAVDESS_DIR")
    return data[0] if len(data) == 1 else data


def cmd_train(args) -> int:
    from .card import card_markdown
    from .dataset import parse_classes
    from .training import train_model

    protocols = [] if args.no_evaluate else ["actors", "random"]
    model = train_model(
        _data_dir(args.data),
        preset=args.preset,
        classes=parse_classes(args.classes),
        protocols=protocols,
        test_data=[] if args.no_evaluate else (args.test_data or []),
        progress=_progress_printer(not args.quiet),
        n_jobs=args.jobs,
        cache=not args.no_cache,
        augment=args.augment,
    )
    out = Path(args.out)
    model.save(out)
    out.with_suffix(".md").write_text(card_markdown(model))
    scores = model.card.get("scores", {})
    summary = ", ".join(f"{p} {s['accuracy']:.1%}" for p, s in scores.items()) or "not evaluated"
    print(f"wrote {out} (version {model.version}; accuracy {summary})")
    return 0


def cmd_evaluate(args) -> int:
    from .dataset import load_features, parse_classes
    from .experiments import evaluate_calibration, evaluate_conditions, evaluate_dataset, evaluate_nested

    progress = _progress_printer(not args.quiet and not args.json)
    if args.conditions:
        if args.protocol != "actors":
            raise ConfigError("--conditions works with --protocol actors")
        res = evaluate_conditions(
            _data_dir(args.data),
            args.preset,
            [c.strip() for c in args.conditions.split(",")],
            classes=parse_classes(args.classes),
            augment=args.augment,
            progress=progress,
            n_jobs=args.jobs,
        )
        if args.json:
            print(json.dumps({"protocol": "actors", "preset": args.preset, "conditions": res}, indent=1))
        else:
            print(f"preset {args.preset}, speaker-independent, test-time conditions")
            for cond, r in res.items():
                drop = f"  drop {r['drop_vs_clean']:+.1f} points" if "drop_vs_clean" in r else ""
                print(f"  {cond:9s} accuracy {r['accuracy']:.1%}  UAR {r['uar']:.1%}{drop}")
        return 0
    if args.nested:
        if args.protocol != "actors":
            raise ConfigError("--nested works with --protocol actors")
        if args.augment is not None:
            raise ConfigError(
                "--nested takes augmentation per candidate (compact@opus+noise); leave out --augment"
            )
        scores = evaluate_nested(
            _data_dir(args.data),
            [c.strip() for c in args.nested.split(",") if c.strip()],
            classes=parse_classes(args.classes),
            progress=progress,
            n_jobs=args.jobs,
            cache=not args.no_cache,
        )
        args.preset = "nested:" + args.nested
        return _report(scores, args)
    if args.protocol == "corpora":
        return _corpora(args, progress)
    if args.test_data:
        raise ConfigError("--test-data goes with --protocol corpora")
    features, _ = preset_parts(args.preset)
    args.augmented = preset_augment(args.preset, args.augment)
    ds = load_features(
        _data_dir(args.data),
        features,
        classes=parse_classes(args.classes),
        progress=progress,
        n_jobs=args.jobs,
        cache=not args.no_cache,
        augment=args.augmented,
    )
    scores = evaluate_dataset(ds, args.protocol, args.preset, progress=progress)
    if args.calibration:
        if args.protocol != "actors":
            raise ConfigError("--calibration works with --protocol actors")
        args.calibration_result = evaluate_calibration(ds, args.preset, png=args.calibration)
    return _report(scores, args)


def _corpora(args, progress) -> int:
    """``--protocol corpora``: leave each corpus out in turn (``experiments.evaluate_corpora``)."""
    from .dataset import load_features
    from .evaluate import plot_confusion
    from .experiments import evaluate_corpora

    data = _data_dir(args.data)
    roots = [data] if isinstance(data, str) else data
    args.augmented = preset_augment(args.preset, args.augment)
    ds = load_features(
        [*roots, *(args.test_data or [])],
        preset_parts(args.preset)[0],
        progress=progress,
        n_jobs=args.jobs,
        cache=not args.no_cache,
        augment=args.augmented,
    )
    res = evaluate_corpora(ds, args.preset, progress=progress)
    if not res:
        raise ConfigError("leave-one-corpus-out needs at least two corpora, one of which may train")
    if args.confusion:
        for name, sc in res.items():
            path = args.confusion.replace(".png", f"-{name}.png")
            plot_confusion(sc, path, f"{args.preset}: {sc.folds[0]['fold']}, accuracy {sc.accuracy:.1%}")
    if args.json:
        print(
            json.dumps(
                {
                    "protocol": "corpora",
                    "preset": args.preset,
                    "augment": list(args.augmented),
                    "corpora": {n: sc.to_dict() for n, sc in res.items()},
                },
                indent=1,
            )
        )
        return 0
    print(
        f"preset {args.preset}, leave one corpus out (prediction restricted to the classes both sides have)"
    )
    for sc in res.values():
        fold = sc.folds[0]
        print(
            f"  {fold['fold']:28s} accuracy {sc.accuracy:6.1%}  UAR {sc.uar:6.1%}  macro-F1 {sc.macro_f1:6.1%}  "
            f"ECE {fold['ece']:.3f}  ({sc.n_files} clips, {len(sc.labels)} classes)"
        )
    return 0


def _report(scores, args) -> int:
    from .evaluate import plot_confusion

    if args.confusion:
        plot_confusion(
            scores, args.confusion, f"{args.preset}, {args.protocol}: accuracy {scores.accuracy:.1%}"
        )
    result = scores.to_dict() | {"preset": args.preset, "augment": list(getattr(args, "augmented", ()))}
    cal = getattr(args, "calibration_result", None)
    if cal:
        result["calibration"] = cal
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        aug = ", ".join(getattr(args, "augmented", ())) or "none"
        print(
            f"preset {args.preset} (training augmentation: {aug}), protocol {args.protocol}, {scores.n_files} files"
        )
        print(f"accuracy {scores.accuracy:.1%}  macro-F1 {scores.macro_f1:.1%}  UAR {scores.uar:.1%}")
        if cal:
            print(
                f"calibration: ECE {cal['ece_before']:.3f} before, {cal['ece_after']:.3f} after temperature "
                f"scaling (fold temperatures {cal['temperatures']})"
            )
        for lab, r in scores.per_class.items():
            print(f"  {lab:10s} {r:6.1%}")
        for f in scores.folds:
            pick = f" chose {f['chosen']} (inner {f['inner_accuracy']})" if "chosen" in f else ""
            print(f"  fold {f['fold']:14s} {f['accuracy']:.1%} ({f['n_test']} clips){pick}")
    return 0


def _audio_files(names: list[str]) -> list[str]:
    """The files to predict: each name as given, a folder as every audio file in it (sorted, recursively)."""
    from .constants import AUDIO_EXTENSIONS

    out = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(
                str(p) for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
            )
            if not found:
                raise SerError(f"{name} holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS))})")
            out += found
        else:
            out.append(name)
    return out


def cmd_predict(args) -> int:
    from .audio import Limits
    from .model import load_model

    if args.transcript and args.language:
        from .transcript import language_code

        args.language = language_code(args.language)  # an unknown one is said once, not once per file
    model = load_model(args.model)
    limits = Limits(max_seconds=args.max_seconds)
    failed = 0
    for f in _audio_files(args.files):
        try:
            pred = model.predict(f, limits=limits)
            said = _transcript(f, args, limits) if args.transcript else None
        except SerError as exc:
            failed += 1
            print(f"{f}: {exc}", file=sys.stderr)
            continue
        except OSError as exc:  # a file that cannot be read at all (permissions, a device, ...)
            failed += 1
            print(f"{f}: cannot read it ({exc.strerror or exc})", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"file": f} | pred.to_dict() | ({"transcript": said.to_dict()} if said else {})))
        else:
            head = f"{pred.label} ({pred.confidence:.0%})"
            if pred.uncertain:
                (a, pa), (b, pb) = pred.ranked[:2]
                head = f"not sure: {a} ({pa:.0%}) or {b} ({pb:.0%})"
            cut = f"  [cut short: only its first {pred.duration_s:.1f} s arrived]" if pred.cut_short else ""
            print(f"{f}: {head}  " + " ".join(f"{k} {v:.0%}" for k, v in pred.ranked[1:]) + cut)
            for s in pred.timeline:
                words = f"  {said.between(s.start_s, s.end_s)}" if said else ""
                print(f"  {s.start_s:6.1f}-{s.end_s:6.1f} s  {s.label}{words}")
            if said is not None:
                how = "pinned" if said.pinned else f"detected, {said.language_probability:.0%}"
                print(f"  transcript ({said.language_name}, {how}): {said.text or '(no words heard)'}")
    return 2 if failed else 0


def _transcript(f: str, args, limits):
    """``ser predict --transcript``: what the file says (the Whisper model loads once, on the first file)."""
    from .audio import decode
    from .transcript import transcribe

    return transcribe(decode(f, limits=limits), language=args.language)


def cmd_score(args) -> int:
    """``ser score FOLDER``: the model (shipped, or ``--model``) on a labelled folder, cold and adapted."""
    from .cache import extract_files
    from .datasets import labelled_speakers
    from .model import load_model
    from .scoring import SPECS, curve

    model = load_model(args.model)
    clips, source = labelled_speakers(args.folder)
    X = extract_files(
        [c.path for c in clips],
        model.features,
        cache_dir=not args.no_cache,
        n_jobs=args.jobs,
        progress=not args.quiet and not args.json,
    )
    y = np.array([c.emotion for c in clips])
    groups = np.array([c.speaker for c in clips])
    res = curve(model, X, y, groups, SPECS, seeds=range(args.seeds))
    meta = res.pop("_")
    if args.json:
        print(
            json.dumps(
                {
                    "model": model.version,
                    "clips": len(clips),
                    "speakers": len(set(groups.tolist())),
                    "speakers_from": source,
                    "classes": meta["classes"],
                    "unknown_class": meta["unknown_class"],
                    "adaptation": res,
                }
            )
        )
        return 0
    print(
        f"model {model.version} on {args.folder}: {len(clips)} clips, {len(set(groups.tolist()))} speakers "
        f"(from {source}), classes {', '.join(meta['classes'])}"
        + (
            f"; {meta['unknown_class']} clips of classes the model lacks left out"
            if meta["unknown_class"]
            else ""
        )
    )
    print(
        f"{'adaptation':22s} {'accuracy':>9s} {'own classes':>12s} {'UAR':>6s} {'ECE':>6s} {'acc@80%':>8s} "
        f"{'scored':>7s}  speakers left out"
    )
    for name, r in res.items():
        if not r["scored"]:
            print(f"{name:22s} {'—':>9s} (no speaker has the clips it needs)")
            continue
        print(
            f"{name:22s} {r['accuracy']:9.1%} {r['accuracy_own_classes']:12.1%} {r['uar']:6.1%} {r['ece']:6.3f} "
            f"{r['accuracy_at_80']:8.1%} {r['scored']:7d}  {r['speakers_left_out']}"
        )
    print(
        "accuracy: the answer over all the model's classes, as the bot gives it; own classes: restricted to the "
        "folder's. Notes used to adapt are not scored; draws are seeded."
    )
    return 0


def cmd_info(args) -> int:
    from .card import card_markdown
    from .model import load_model

    model = load_model(args.model)
    if args.json:
        print(
            json.dumps(
                {
                    "version": model.version,
                    "labels": list(model.labels),
                    "features": model.features.to_dict(),
                    "card": model.card,
                },
                indent=1,
            )
        )
    else:
        print(card_markdown(model), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ser", description="Speech-emotion recognition: train, evaluate, predict.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def common(sp, data=True):
        if data:
            sp.add_argument(
                "--data",
                action="append",
                help="RAVDESS folder or a folder with labels.csv; repeat for several corpora "
                "(default: $SER_RAVDESS_DIR)",
            )
            sp.add_argument(
                "--test-data",
                action="append",
                metavar="DIR",
                help="a corpus to measure on and never train on (e.g. an evaluation-only one); "
                "repeatable; for --protocol corpora and train",
            )
            sp.add_argument(
                "--preset",
                default=DEFAULT_PRESET,
                help=f"feature preset: {', '.join(PRESETS)} (default {DEFAULT_PRESET}; "
                "seed is the classic recipe)",
            )
            sp.add_argument(
                "--classes", help="train/evaluate on these classes only, e.g. calm,happy,sad,angry"
            )
            sp.add_argument(
                "--augment",
                metavar="NAMES",
                help="augmented copies of training clips, e.g. opus,noise,reverb (of: opus, pitch, "
                "speed, noise, gain, reverb), or none; default: the preset's own",
            )
            sp.add_argument(
                "--jobs", type=int, default=None, help="feature extraction processes (default: cores)"
            )
            sp.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
            sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    t = sub.add_parser("train", help="train a model on a data folder")
    common(t)
    t.add_argument("--out", default="model.npz", help="model file to write (a .md model card goes beside it)")
    t.add_argument("--no-evaluate", action="store_true", help="skip the cross-validated scores for the card")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="cross-validate a preset")
    common(e)
    e.add_argument(
        "--protocol",
        choices=["actors", "random", "corpora"],
        default="actors",
        help="actors: speaker-independent folds; random: stratified 80/20 over 5 seeds (speakers leak); "
        "corpora: leave each corpus out in turn (train on the others that may train)",
    )
    e.add_argument(
        "--nested",
        metavar="PRESETS",
        help="e.g. compact,rich or compact@none,compact@opus+noise: score choosing among these per fold "
        "on training actors only",
    )
    e.add_argument(
        "--conditions",
        metavar="NAMES",
        help="score under test-time conditions, e.g. clean,discord,noisy20,noisy10,gain+12,gain-12",
    )
    e.add_argument(
        "--calibration",
        metavar="FILE.png",
        help="also measure calibration (ECE before/after temperature scaling, nested) and plot it",
    )
    e.add_argument("--json", action="store_true", help="print the scores as JSON")
    e.add_argument("--confusion", metavar="FILE.png", help="write the confusion matrix as a PNG")
    e.set_defaults(func=cmd_evaluate)

    pr = sub.add_parser("predict", help="predict the emotion of audio files")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--model", help="model file (default: the shipped model)")
    pr.add_argument("--json", action="store_true", help="one JSON object per file")
    pr.add_argument("--max-seconds", type=float, default=120.0, help="refuse longer clips (default 120)")
    pr.add_argument(
        "--transcript",
        action="store_true",
        help="also print what each file says, with its language (offline Whisper base; ~30x the emotion's time)",
    )
    pr.add_argument(
        "--language", help="with --transcript: the language (code or name) instead of detecting it"
    )
    pr.set_defaults(func=cmd_predict)

    sc = sub.add_parser(
        "score", help="score a model on a labelled folder, cold and after learning each voice (no training)"
    )
    sc.add_argument("folder", help="a folder with labels.csv (path,emotion[,speaker]) or a RAVDESS folder")
    sc.add_argument("--model", help="model file (default: the shipped model)")
    sc.add_argument("--json", action="store_true", help="print one JSON object")
    sc.add_argument("--seeds", type=int, default=3, help="draws per adaptation (default 3)")
    sc.add_argument("--jobs", type=int, default=None, help="feature extraction processes (default: cores)")
    sc.add_argument("--no-cache", action="store_true", help="do not read or write the feature cache")
    sc.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    sc.set_defaults(func=cmd_score)

    i = sub.add_parser("info", help="show a model's card")
    i.add_argument("model", nargs="?", help="model file (default: the shipped model)")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SerError as exc:
        print(f"ser {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ser: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
