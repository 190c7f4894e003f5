"""``python -m bench.studies.transcript``'s pieces that need no model: the corpora's known sentences, the
balanced sample, and the line it prints without the corpora."""

from __future__ import annotations

import pytest

from bench.studies import transcript as bench


def test_without_corpora_it_says_what_to_set(monkeypatch, capsys):
    monkeypatch.delenv("SER_CORPORA_DIR", raising=False)
    assert bench.main(["--markdown", "-"]) == 2
    assert "set SER_CORPORA_DIR" in capsys.readouterr().out


def test_sentences_are_known_from_file_names_and_labels(tmp_path):
    emodb = tmp_path / "emodb"
    (emodb / "03").mkdir(parents=True)
    (emodb / "labels.csv").write_text(
        "path,emotion,speaker\n03/03a01Wa.flac,angry,03\n03/03x99Nc.flac,neutral,03\n"
    )
    nemo = tmp_path / "nemo"
    nemo.mkdir()
    (nemo / "labels.csv").write_text("path,emotion,speaker,text\nA/a.ogg,sad,A,Szkoła jest zamknięta.\n")
    actor = tmp_path / "ravdess" / "Actor_01"
    actor.mkdir(parents=True)
    (actor / "03-01-05-02-02-01-01.flac").write_bytes(b"")
    assert [(p.name, e, t) for p, e, t in bench.sentences(tmp_path, "emodb")] == [
        ("03a01Wa.flac", "angry", "Der Lappen liegt auf dem Eisschrank.")
    ]  # an unknown sentence code is left out
    assert bench.sentences(tmp_path, "nemo")[0][1:] == ("sad", "Szkoła jest zamknięta.")
    assert bench.sentences(tmp_path, "ravdess")[0][1:] == ("angry", "Dogs are sitting by the door")
    assert bench.sentences(tmp_path, "savee") == []  # its sentences are not available here


@pytest.mark.parametrize("n", [6, 7])
def test_the_sample_is_balanced_over_emotions_and_seeded(n):
    clips = [(f"{e}{i}", e, "") for e in ("angry", "sad", "happy") for i in range(10)]
    a, b = bench.balanced(clips, n, seed=3), bench.balanced(clips, n, seed=3)
    assert a == b and len(a) == n
    counts = [sum(c[1] == e for c in a) for e in ("angry", "sad", "happy")]
    assert max(counts) - min(counts) <= 1
    assert bench.balanced(clips, n, seed=4) != a
