"""The model card for people: its Markdown (shipped beside the model file, shown by ``ser info``) and the
summary of its scores (``score_summary``: also the bot's ``/emotion model``).
"""

from __future__ import annotations

from .model import Model


def card_markdown(model: Model) -> str:
    """The model card as Markdown (shipped beside the model file and shown by ``ser info``)."""
    c = model.card
    f = model.features
    lines = [f"# Model card: `{model.version}`", ""]
    front = f"{f.dim} features at {f.sr} Hz"
    if f.encoder:
        block = "blocks " + "+".join(str(k) if k else "last" for k in f.encoder_layers)
        front += f"; {f.encoder} encoder, {block}, {'+'.join(f.encoder_stats)} over speech frames"
    lines.append(f"- Preset: `{c.get('preset', f.preset)}` ({front})")
    lines.append(f"- Classes: {', '.join(model.labels)}")
    clf = c.get("classifier", {})
    if clf:
        shape = (
            f"C={clf.get('C')}"
            if clf.get("head") == "logreg"
            else f"hidden={clf.get('hidden')} alpha={clf.get('alpha')} ensemble={clf.get('n_ensemble')}"
        )
        lines.append(
            f"- Classifier: {clf.get('type')} {shape}, class weights: {clf.get('balance') or 'none'}"
        )
    data = c.get("data", {})
    if data:
        lines.append(f"- Trained on: {data.get('n_clips')} clips, {data.get('n_speakers')} speakers")
        for name, info in (data.get("corpora") or {}).items():
            lines.append(
                f"  - {info.get('title', name)}: {info.get('n_clips')} clips; licence {info.get('licence')}"
                + (f"; cite {info['citation']}" if info.get("citation") else "")
            )
        if data.get("test_only"):
            lines.append(f"- Measured on, never trained on: {', '.join(data['test_only'])}")
        aug = data.get("augmented")
        lines.append(
            f"- Training augmentation: one copy of every clip per {', '.join(aug)} (`ser_core.augment`)"
            if aug
            else "- Training augmentation: none"
        )
    cal = c.get("calibration")
    if cal:
        held = [f.removesuffix(" held out") for f in cal.get("fitted_on", [])[1:]]
        head = (
            f"adapted head {cal['adapted_temperature']:.2f} (ECE on unseen speakers {cal['ece_oof_adapted']:.3f})"
            if "adapted_temperature" in cal
            else "no adapted head"
        )
        if "unsure_below" in cal:
            head += (
                f'; an answer under {cal["unsure_below"]:.0%} is called "not sure" (below it, answers on voices '
                "the models never heard were wrong more often than right)"
            )
        if held:
            errors = ", ".join(f"{h} held out {cal[f'ece_{h}_held_out_after']:.3f}" for h in held)
            lines.append(
                f"- Confidence: temperature {cal['temperature']:.2f}, fitted on unseen speakers of the training "
                "corpora (out of fold) and on each training corpus scored by a model of the others, both kinds "
                f"weighing the same. Calibration error (ECE) at this temperature: unseen speakers "
                f"{cal['ece_oof_after']:.3f} ({cal['ece_oof_before']:.3f} at temperature 1), {errors}; {head}"
            )
        else:
            lines.append(
                f"- Confidence: temperature {cal['temperature']:.2f} fitted on out-of-fold predictions over the "
                f"speaker folds (expected calibration error {cal['ece_oof_before']:.3f} → "
                f"{cal['ece_oof_after']:.3f}); {head}"
            )
    lines.append(f"- Trained: {c.get('trained', c.get('created', '?'))}")
    if "versions" in c:
        lines.append("- Libraries: " + ", ".join(f"{k} {v}" for k, v in c["versions"].items()))
    summary = score_summary(c)
    if summary["off_corpus"]:
        lines += [
            "",
            "## On voices from corpora it was not trained on (leave one corpus out)",
            "",
            "| held-out corpus | trained on | classes | accuracy | UAR | macro-F1 | calibration error (ECE) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in summary["off_corpus"]:
            ece_cell = "—" if r["ece"] is None else f"{r['ece']:.3f}"
            lines.append(
                f"| {r['corpus']} | {' + '.join(r['trained_on'])} | {r['n_classes']} | {r['accuracy']:.1%} | "
                f"{r['uar']:.1%} | {r['macro_f1']:.1%} | {ece_cell} |"
            )
    if summary["adaptation"]:
        lines += [
            "",
            "## After learning the voice (`ser_core.adapt`)",
            "",
            "Accuracy over all the model's classes (as the bot answers) on the corpora it never heard, each "
            "speaker's first notes used to learn the voice and not scored: `neutral-3` = three reference notes "
            "of the ordinary voice (`/emotion calibrate`), `profile-20` = twenty everyday notes, `skewed` = "
            "twenty of which 70 % neutral or calm.",
            "",
            "| held-out corpus | " + " | ".join(ADAPTATION_COLUMNS) + " |",
            "|---|" + "---|" * len(ADAPTATION_COLUMNS),
        ]
        for corpus, row in summary["adaptation"].items():
            cells = [f"{row[k]:.1%}" if row.get(k) is not None else "—" for k in ADAPTATION_COLUMNS]
            lines.append(f"| {corpus} | " + " | ".join(cells) + " |")
    if summary["inside"]:
        lines += [
            "",
            "## Inside the training corpora",
            "",
            "| protocol | accuracy | macro-F1 | UAR |",
            "|---|---|---|---|",
        ]
        for r in summary["inside"]:
            lines.append(
                f"| {r['protocol']} ({r['what']}) | {r['accuracy']:.1%} | {r['macro_f1']:.1%} | {r['uar']:.1%} |"
            )
        pc = (c.get("scores", {}).get("actors") or {}).get("per_class")
        if pc:
            lines += [
                "",
                "Per-class recall, unseen actors: " + ", ".join(f"{k} {v:.0%}" for k, v in pc.items()),
            ]
    if summary["expect"]:
        lines += ["", summary["expect"]]
    return "\n".join(lines) + "\n"


def score_summary(card: dict) -> dict:
    """The card's scores for people: ``off_corpus`` rows (leave one corpus out), ``inside`` rows (actors,
    random), and ``expect``, one plain sentence on what a new voice should expect."""
    scores = card.get("scores") or {}
    off, inside = [], []
    for p, s in scores.items():
        if not isinstance(s, dict) or "accuracy" not in s:
            continue
        row = {k: s.get(k, 0.0) for k in ("accuracy", "uar", "macro_f1")}
        if p.startswith("corpora:"):
            fold = (s.get("folds") or [{}])[0]
            off.append(
                row
                | {
                    "corpus": p.split(":", 1)[1],
                    "trained_on": fold.get("trained_on", []),
                    "n_classes": len(s.get("labels", [])),
                    # Only a held-out model calibrated like the shipped one says how honest its percentages are.
                    "ece": fold.get("ece") if fold.get("calibrated") else None,
                }
            )
        else:
            what = (
                "unseen RAVDESS actors, 6 folds"
                if p == "actors"
                else "stratified 80/20, 5 seeds: the same speakers on both sides"
            )
            inside.append(row | {"protocol": p, "what": what})
    adaptation = {}
    for p, s in scores.items():
        fold = (s.get("folds") or [{}])[0] if isinstance(s, dict) else {}
        curve = fold.get("adaptation") if p.startswith("corpora:") else None
        if curve:
            adaptation[p.split(":", 1)[1]] = {
                k: (curve.get(k) or {}).get("accuracy") for k in ADAPTATION_COLUMNS
            }
    expect = ""
    if off:
        lo, hi = min(r["accuracy"] for r in off), max(r["accuracy"] for r in off)
        expect = (
            f"What to expect on a new voice: {lo:.0%} to {hi:.0%} of notes right, by how far the voice, "
            "language and microphone are from the training corpora (leave-one-corpus-out). The unseen-actor "
            "number is higher because those actors share the corpus's sentences and studio."
        )
        ranges = {
            k: [r[k] for r in adaptation.values() if r.get(k) is not None]
            for k in ("neutral-3", "profile-20")
        }
        if all(ranges.values()):
            expect += (
                f" After three calibration notes: {min(ranges['neutral-3']):.0%} to {max(ranges['neutral-3']):.0%};"
                f" after twenty everyday notes: {min(ranges['profile-20']):.0%} to {max(ranges['profile-20']):.0%}"
                " (answers over all the model's classes)."
            )
    elif inside:
        expect = (
            "The unseen-actor number holds for voices like the corpus's own; other voices, words and "
            "microphones score lower (measure with `ser evaluate --protocol corpora`)."
        )
    return {"off_corpus": off, "inside": inside, "expect": expect, "adaptation": adaptation}


#: The adaptations the card shows (``scoring.SPECS``), in order.
ADAPTATION_COLUMNS = ("none", "neutral-3", "profile-5", "profile-20", "profile-20-skewed")
