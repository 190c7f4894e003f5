"""Data sets: the RAVDESS scanner, a generic labelled-folder loader, and several corpora at once.

Each returns a ``ScanReport`` of ``Clip``; nothing is decoded here. ``CORPORA`` knows the licence and citation
of the corpora this project has measured, and which of them may train a model that is given to others.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .constants import AUDIO_EXTENSIONS, EMOTIONS, RAVDESS_CODES
from .errors import DatasetError

RAVDESS_FILES = 1440
RAVDESS_ACTORS = 24
_RAVDESS_NAME = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")


@dataclass(frozen=True)
class Clip:
    """One labelled recording. ``speaker`` groups clips for speaker-independent splits."""

    path: Path
    emotion: str
    speaker: str
    intensity: str = ""
    statement: str = ""
    repetition: str = ""
    #: The corpus the clip comes from (its folder name, lower case); "" for clips from outside a corpus.
    corpus: str = ""

    @property
    def group(self) -> str:
        """Speaker id unique across corpora: ``"<corpus>:<speaker>"`` (or the bare speaker outside a corpus)."""
        return f"{self.corpus}:{self.speaker}" if self.corpus else self.speaker


@dataclass(frozen=True)
class CorpusInfo:
    """What a corpus is and on what terms it may be used."""

    title: str
    licence: str
    citation: str
    #: False: research-use corpora, for evaluation only; never in a model or features given to others.
    may_train: bool


#: Corpora known by folder name. A folder not listed here is the user's own data: it may train, under its
#: own licence.
CORPORA: dict[str, CorpusInfo] = {
    "ravdess": CorpusInfo(
        "RAVDESS speech (24 actors, English)",
        "CC BY-NC-SA 4.0",
        "Livingstone & Russo (2018) PLoS ONE 13(5): e0196391, doi:10.1371/journal.pone.0196391",
        True,
    ),
    "nemo": CorpusInfo(
        "nEMO (9 actors, Polish)",
        "CC BY-NC-SA 4.0",
        "Christop (2024) nEMO: Dataset of Emotional Speech in Polish, LREC-COLING 2024, 12111-12116",
        True,
    ),
    "savee": CorpusInfo(
        "SAVEE (4 male speakers, British English)",
        "research use only (University of Surrey)",
        "Haq & Jackson (2009) Speaker-dependent audio-visual emotion recognition, AVSP 2009, 53-58",
        False,
    ),
    "emodb": CorpusInfo(
        "EmoDB (10 speakers, German)",
        "research use",
        "Burkhardt et al. (2005) A Database of German Emotional Speech, Interspeech 2005, 1517-1520",
        False,
    ),
}


def group_corpus(group: str) -> str:
    """The corpus part of a ``Clip.group`` (``"nemo:SM0"`` → ``"nemo"``; a bare speaker id → ``""``)."""
    return group.partition(":")[0] if ":" in group else ""


def corpus_info(name: str) -> CorpusInfo:
    """``CORPORA[name]``, or a description of the user's own folder."""
    return CORPORA.get(name) or CorpusInfo(f"{name} (own data)", "the data's own licence", "", True)


@dataclass
class ScanReport:
    """What a scan found: usable clips, and files it skipped with the reason."""

    clips: list[Clip]
    skipped: list[tuple[Path, str]]
    missing_actors: list[str]

    @property
    def speakers(self) -> list[str]:
        several = len({c.corpus for c in self.clips}) > 1
        return sorted({c.group if several else c.speaker for c in self.clips})

    def summary(self) -> str:
        lines = [f"{len(self.clips)} clips, {len(self.speakers)} speakers"]
        if self.skipped:
            lines.append(
                f"{len(self.skipped)} files skipped, e.g. {self.skipped[0][0].name}: {self.skipped[0][1]}"
            )
        if self.missing_actors:
            lines.append(f"missing actors: {', '.join(self.missing_actors)}")
        return "; ".join(lines)


def parse_ravdess_name(stem: str) -> dict[str, str]:
    """Fields of a RAVDESS name such as ``03-01-05-02-01-01-12``; ``DatasetError`` if it is not one."""
    m = _RAVDESS_NAME.match(stem)
    if not m:
        raise DatasetError(f"{stem!r} is not a RAVDESS name (seven two-digit fields)")
    modality, channel, emo, intensity, statement, rep, actor = m.groups()
    problems = []
    if modality not in ("01", "02", "03"):
        problems.append(f"modality {modality}")
    if channel not in ("01", "02"):
        problems.append(f"vocal channel {channel}")
    if emo not in RAVDESS_CODES:
        problems.append(f"emotion {emo}")
    if intensity not in ("01", "02") or (emo == "01" and intensity == "02"):
        problems.append(f"intensity {intensity}")
    if statement not in ("01", "02"):
        problems.append(f"statement {statement}")
    if rep not in ("01", "02"):
        problems.append(f"repetition {rep}")
    if not 1 <= int(actor) <= 24:
        problems.append(f"actor {actor}")
    if problems:
        raise DatasetError(f"{stem}: invalid {', '.join(problems)}")
    return {
        "modality": modality,
        "channel": channel,
        "emotion": RAVDESS_CODES[emo],
        "intensity": intensity,
        "statement": statement,
        "repetition": rep,
        "actor": actor,
    }


def scan_ravdess(root: str | Path, *, strict: bool = False) -> ScanReport:
    """Find RAVDESS speech clips (audio-only, speech) under ``root``.

    Accepts the original ``Actor_XX/`` layout or a flat folder, any audio extension. With ``strict``,
    anything other than the full 1440-file, 24-actor set raises ``DatasetError``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"RAVDESS folder not found: {root}. Set SER_RAVDESS_DIR or pass --data.")
    clips, skipped = [], []
    seen: set[str] = set()
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in AUDIO_EXTENSIONS:
            continue
        try:
            f = parse_ravdess_name(path.stem)
        except DatasetError as exc:
            skipped.append((path, str(exc)))
            continue
        if f["modality"] != "03" or f["channel"] != "01":
            skipped.append((path, "not audio-only speech"))
            continue
        if path.stem in seen:
            skipped.append((path, "duplicate name"))
            continue
        parent = path.parent.name
        if parent.startswith("Actor_") and parent != f"Actor_{f['actor']}":
            skipped.append((path, f"in {parent} but named for actor {f['actor']}"))
            continue
        seen.add(path.stem)
        clips.append(
            Clip(
                path,
                f["emotion"],
                f["actor"],
                f["intensity"],
                f["statement"],
                f["repetition"],
                corpus="ravdess",
            )
        )
    if not clips:
        raise DatasetError(
            f"no RAVDESS clips (names like 03-01-05-02-01-01-12.wav) found under {root}, and no labels.csv "
            "(path,emotion,speaker) to describe other clips"
        )
    actors = {c.speaker for c in clips}
    missing = [f"{i:02d}" for i in range(1, RAVDESS_ACTORS + 1) if f"{i:02d}" not in actors]
    report = ScanReport(clips, skipped, missing)
    if strict and (len(clips) != RAVDESS_FILES or missing):
        raise DatasetError(f"expected {RAVDESS_FILES} clips from {RAVDESS_ACTORS} actors: {report.summary()}")
    return report


def load_labelled_folder(root: str | Path) -> ScanReport:
    """Clips listed in ``root/labels.csv`` (header ``path,emotion[,speaker]``; paths relative to ``root``).

    Paths must stay inside ``root``. Emotions must be one of the eight labels. A missing speaker becomes
    ``"unknown"``, which speaker-independent protocols treat as one speaker.
    """
    root = Path(root)
    table = root / "labels.csv"
    if not table.is_file():
        raise DatasetError(
            f"{table} not found: a labelled folder needs labels.csv with path,emotion[,speaker]"
        )
    base = root.resolve()
    corpus = corpus_name(root)
    clips, skipped = [], []
    with table.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"path", "emotion"} <= set(reader.fieldnames):
            raise DatasetError(f"{table} needs a header with at least path,emotion")
        for row in reader:
            rel = (row.get("path") or "").strip()
            emo = (row.get("emotion") or "").strip().lower()
            speaker = (row.get("speaker") or "").strip() or "unknown"
            path = (root / rel).resolve()
            if not rel or not path.is_relative_to(base):
                skipped.append((Path(rel), "path outside the folder"))
            elif emo not in EMOTIONS:
                skipped.append((path, f"unknown emotion {emo!r}"))
            elif not path.is_file():
                skipped.append((path, "file not found"))
            else:
                clips.append(Clip(path, emo, speaker, corpus=corpus))
    if not clips:
        raise DatasetError(f"{table} lists no usable clips" + (f" ({skipped[0][1]})" if skipped else ""))
    return ScanReport(clips, skipped, [])


def labelled_speakers(root: str | Path) -> tuple[list[Clip], str]:
    """The clips of a folder to score, and where their speakers come from: ``"the speaker column"`` of
    ``labels.csv``, ``"sub-folders"`` (no such column: each clip's first folder is its speaker, a clip at
    the top its own), or ``"RAVDESS file names"``. ``DatasetError`` in one line for anything unusable."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder")
    if not (root / "labels.csv").is_file():
        return scan_ravdess(root).clips, "RAVDESS file names"
    clips = load_labelled_folder(root).clips
    with (root / "labels.csv").open(newline="", encoding="utf-8") as fh:
        header = next(csv.reader(fh), [])
    if "speaker" in [h.strip() for h in header]:
        return clips, "the speaker column"
    base = root.resolve()
    out = []
    for c in clips:
        rel = Path(c.path).relative_to(base)
        out.append(Clip(c.path, c.emotion, rel.parts[0] if len(rel.parts) > 1 else rel.stem, corpus=c.corpus))
    return out, "sub-folders"


def corpus_name(root: str | Path) -> str:
    """The corpus a folder is named for: its name in lower case (``../data/EmoDB`` → ``emodb``). Licences are
    looked up by it (``corpus_info``), so an evaluation-only corpus is recognised even before it is read."""
    return Path(root).resolve().name.lower()


def clip_corpus(root: str | Path) -> str:
    """The corpus the clips of folder ``root`` carry (``Clip.corpus``): ``ravdess`` for a folder scanned as
    RAVDESS (no ``labels.csv``) whatever it is called (``Audio_Speech_Actors_01-24``), else ``corpus_name``."""
    root = Path(root)
    return "ravdess" if root.is_dir() and not (root / "labels.csv").is_file() else corpus_name(root)


def load_dataset(root: str | Path) -> ScanReport:
    """A labelled folder if ``root/labels.csv`` exists, else a RAVDESS scan."""
    root = Path(root)
    return load_labelled_folder(root) if (root / "labels.csv").is_file() else scan_ravdess(root)


def load_corpora(roots: Sequence[str | Path]) -> ScanReport:
    """Clips of several corpus folders, in order. Speakers stay apart across corpora (``Clip.group``); two
    folders with the same corpus name are refused, since their speakers could not be told apart."""
    if not roots:
        raise DatasetError("no data folder given")
    clips, skipped, seen = [], [], set()
    for root in roots:
        name = clip_corpus(root)
        if name in seen:
            raise DatasetError(
                f"two data folders are both named {name!r}: rename one so their speakers stay apart"
            )
        seen.add(name)
        report = load_dataset(root)
        clips += report.clips
        skipped += report.skipped
    return ScanReport(clips, skipped, [])
