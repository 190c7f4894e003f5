"""The offline transcript (``ser_core.transcribe``): a shipped demo clip's known sentence, its words on the
timeline, pinned languages, long notes in windows, the weights' checksum, the token decoding; German and
Polish detection on the corpora (marked ``corpora``)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from synth import SR, tone

from ser_core import encoder, transcript
from ser_core.errors import ConfigError, ModelError

VOICES = Path(__file__).resolve().parents[1] / "bot" / "testing" / "voices"
SENTENCE = "Kids are talking by the door"  # RAVDESS statement 01: every shipped demo clip says it

pytestmark = pytest.mark.skipif(
    not encoder.available(transcript.MODEL), reason="the whisper-base wheels or ctranslate2 are missing"
)


@pytest.fixture(scope="session")
def transcriber():
    """The model, loaded once for the whole test session (about a second)."""
    return transcript.load()


@pytest.fixture(scope="session")
def angry(transcriber):
    return transcript.transcribe(VOICES / "angry-actor01.ogg")


def test_a_demo_clip_says_its_sentence_word_by_word(angry):
    words = transcript.normalise(angry.text)
    assert transcript.edit_distance(transcript.normalise(SENTENCE), words) <= 1, angry.text
    assert angry.language == "en" and not angry.pinned and angry.language_probability > 0.5
    assert [transcript.normalise(w.text) for w in angry.words] == [[w] for w in words]
    starts = [w.start_s for w in angry.words]
    assert starts == sorted(starts) and all(w.start_s <= w.end_s for w in angry.words)
    assert angry.words[0].start_s > 0 and angry.words[-1].end_s <= angry.duration_s + 1e-6
    # the leading silence (about 1 s in RAVDESS) is not part of the first word
    assert angry.words[0].end_s - angry.words[0].start_s < 1.0
    assert angry.between(0, angry.duration_s) == angry.text
    assert angry.between(angry.words[-1].end_s + 0.01, 99) == ""
    assert angry.to_dict()["words"][0]["word"] == angry.words[0].text


def test_a_pinned_language_is_decoded_in_and_named(transcriber):
    t = transcript.transcribe(VOICES / "sad-actor02.ogg", language="German")
    assert (t.language, t.language_name, t.pinned) == ("de", "German", True)
    assert t.language_probability < 0.5  # the detector still believes English
    with pytest.raises(ConfigError, match="unknown language"):
        transcript.transcribe(VOICES / "sad-actor02.ogg", language="Klingon")
    assert transcript.language_code("PL") == "pl" and transcript.language_code("polish") == "pl"


def test_a_long_note_is_cut_in_its_pauses_and_transcribed_whole(transcriber):
    """A 70 s note (the demo sentence every 7 s): three windows of at most 30 s, cut in the silence between
    sentences, and the sentence heard in each."""
    from ser_core.audio import decode

    y = decode(VOICES / "happy-actor03.ogg")
    period = np.zeros(7 * SR, dtype=np.float32)
    period[: y.size] = y[: 7 * SR]
    note = np.tile(period, 10)
    spans = transcript.windows(note)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == note.size
    assert all(b - a <= transcript.WINDOW_S * SR for a, b in spans)
    assert all(a == prev_b for (_, prev_b), (a, _) in zip(spans, spans[1:], strict=False))
    for _, cut in spans[:-1]:
        assert np.abs(note[cut - SR // 20 : cut + SR // 20]).max() == 0  # in a pause
    t = transcriber.transcribe(note)
    assert t.windows == 3
    heard = transcript.normalise(t.text)
    assert heard.count("door") >= 8, t.text  # nearly every one of the ten sentences
    assert t.words[-1].start_s > 60


def test_windows_of_a_short_note_and_of_noise():
    assert transcript.windows(np.zeros(SR * 5, dtype=np.float32)) == [(0, SR * 5)]
    y = tone(200.0, 65.0)
    spans = transcript.windows(y)
    assert len(spans) == 3 and all(b - a <= 30 * SR for a, b in spans)


def test_tokens_decode_from_the_vocabulary_bytes_and_group_into_words():
    assert transcript.token_bytes("ĠKids") == b" Kids"
    pieces = ["ĠKids", "Ġare", "Ġtalking", "Ġby", "Ġthe", "Ġdoor", "!"]
    assert transcript._group_words(pieces, "en") == [[0], [1], [2], [3], [4], [5, 6]]
    # "źródłem" split inside a character: the pieces belong to one word
    raw = " źródłem".encode()
    table = {b: c for c, b in transcript._byte_decoder().items()}
    split = ["".join(table[b] for b in raw[:2]), "".join(table[b] for b in raw[2:])]
    assert transcript._group_words(["ĠJa", *split], "pl") == [[0], [1, 2]]
    assert (
        transcript.word_error_rate("Der Lappen liegt auf dem Eisschrank.", "der lappen liegt im eisschrank")
        == 2 / 6
    )


def test_weights_that_fail_their_checksum_are_refused(monkeypatch):
    spec = encoder.get_spec(transcript.MODEL)
    monkeypatch.setitem(encoder.ENCODERS, transcript.MODEL, dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ModelError, match="sha256"):
        transcript.Transcriber()


def test_ser_predict_transcript_prints_the_words_and_language(transcriber, capsys):
    from ser_core.cli import main

    assert main(["predict", "--transcript", str(VOICES / "sad-actor02.ogg")]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "transcript" in ln)
    assert "English, detected" in line and "talking by the door" in line.lower()
    assert main(["predict", "--transcript", "--language", "xx", str(VOICES / "sad-actor02.ogg")]) == 2
    assert capsys.readouterr().err.count("unknown language") == 1


def _longest(folder: Path, rows: list[dict], n: int) -> list[Path]:
    import soundfile as sf

    paths = [folder / r["path"] for r in rows]
    return sorted(paths, key=lambda p: -sf.info(str(p)).duration)[:n]


@pytest.mark.corpora
@pytest.mark.parametrize(("corpus", "code"), [("emodb", "de"), ("nemo", "pl")])
def test_german_and_polish_are_detected(corpora_dir, transcriber, corpus, code):
    """The three longest neutral clips of one speaker of EmoDB (German) and nEMO (Polish): detected as their
    language (short, emotional Polish clips are often taken for Czech or Ukrainian: a server can pin it)."""
    folder = corpora_dir / corpus
    if not (folder / "labels.csv").is_file():
        pytest.skip(f"{corpus}/labels.csv is not in SER_CORPORA_DIR")
    with open(folder / "labels.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["emotion"] == "neutral"]
    speaker = sorted({r["speaker"] for r in rows})[0]
    clips = _longest(folder, [r for r in rows if r["speaker"] == speaker], 3)
    detected = [transcript.transcribe(p).language for p in clips]
    assert detected.count(code) >= 2, detected


def test_what_the_decoder_says_past_the_notes_end_is_dropped(transcriber):
    """With a note padded to 10 s the decoder may go on after a timestamp past the note's end and say the
    sentence again (a 4.8 s RAVDESS clip came out three times): that part is not the note."""
    t = transcriber

    def ts(seconds: float) -> int:
        return t.timestamp0 + round(seconds / transcript.TIMESTAMP_S)

    said = [t._ids["ĠDogs"], t._ids["Ġare"]]
    ids = [ts(0), *said, ts(4.0), ts(5.0), *said, ts(9.0), t.eot]
    assert t._within(ids, 4.77) == said
    assert t._within(ids, 9.5) == said + said
