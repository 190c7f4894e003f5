"""``python -m bench [corpora] [accuracy] [latency] [training] [burst]``: run the parts (default: all), print a
table for each, merge the results into ``bench/results.json`` and refresh the numbers in ``BENCHMARKS.md``.

Corpora needs the corpora folder (``SER_CORPORA_DIR``: ravdess/, nemo/, savee/, emodb/); accuracy and training
need RAVDESS (``SER_RAVDESS_DIR``). Each is skipped with one line without its data.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from . import accuracy, burst, corpora, latency, training
from .common import RESULTS, corpora_dir, load_results, machine, ravdess_dir, rewrite_between, save_part

PARTS = {"corpora": corpora, "accuracy": accuracy, "latency": latency, "training": training, "burst": burst}
TITLES = {
    "corpora": "Accuracy on corpora the model never heard (leave one corpus out)",
    "accuracy": "Accuracy on RAVDESS alone",
    "latency": "Latency per clip",
    "training": "Training",
    "burst": "Bot under a burst",
}
MARKDOWN = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def run_part(name: str, args: argparse.Namespace) -> dict | None:
    """Run one part; None when it cannot run here (the reason is printed)."""
    if name == "corpora":
        root = corpora_dir()
        if root is None:
            print(
                "corpora: skipped: set SER_CORPORA_DIR to the folder holding ravdess/, nemo/, savee/, emodb/."
            )
            return None
        return corpora.run(root)
    data = ravdess_dir()
    if name in ("accuracy", "training"):
        if data is None:
            print(f"{name}: skipped: set SER_RAVDESS_DIR to the RAVDESS folder (1440 clips) to run it.")
            return None
        return PARTS[name].run(data)
    if name == "latency":
        return latency.run(reps=args.reps, model_path=args.model)
    return burst.run(model_path=args.model, sustained=args.sustained)


def section(name: str, r: dict) -> str:
    m = r["machine"]
    return (
        f"### {TITLES[name]}\n\n`{r['command']}` — {m['date']}, {m['cores']} cores, {m['memory_gib']} GiB, "
        f"{m['cpu']}, Python {m['python']}, load average {m['load']:.1f} at the end; took {r['wall_s']:.0f} s.\n\n{PARTS[name].report(r)}\n"
    )


def write_markdown(results: dict, path: Path) -> None:
    """Replace the text between the markers in ``path`` with every part's latest section."""
    body = "\n".join(section(n, results[n]) for n in PARTS if n in results)
    rewrite_between(path, BEGIN, END, body)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("parts", nargs="*", metavar="part", help=f"any of {', '.join(PARTS)} (default: all)")
    ap.add_argument("--reps", type=int, default=15, help="latency repetitions per column (default 15)")
    ap.add_argument("--sustained", type=int, default=200, help="notes in the sustained burst (default 200)")
    ap.add_argument("--model", help="model file (default: the shipped one, or a stand-in until it exists)")
    ap.add_argument("--results", type=Path, default=RESULTS, help="results file to merge into")
    ap.add_argument(
        "--markdown", type=Path, default=MARKDOWN, help="file whose numbers to refresh ('-': none)"
    )
    args = ap.parse_args(argv)
    unknown = [p for p in args.parts if p not in PARTS]
    if unknown:
        ap.error(f"unknown part {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    m = machine()
    print(
        f"machine: {m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}, Python {m['python']}, {m['date']}"
    )
    command = "python -m bench " + shlex.join(argv if argv is not None else sys.argv[1:])
    for name in args.parts or list(PARTS):
        print(f"\n## {TITLES[name]}\n", flush=True)
        t0 = time.perf_counter()
        r = run_part(name, args)
        if r is None:
            continue
        r.update(command=command.strip(), wall_s=time.perf_counter() - t0)
        results = save_part(name, r, args.results)
        print(PARTS[name].report(results[name]), flush=True)
    if str(args.markdown) != "-":
        write_markdown(load_results(args.results), args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
