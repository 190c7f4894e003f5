"""Parallel extraction and librosa's on-disk numba kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

# Runs in a fresh interpreter with its own, empty NUMBA_CACHE_DIR: records every kernel file the parent has
# written when the worker pool starts, and every file there once the workers are done.
SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    import numpy as np, soundfile as sf
    import ser_core.cache as cache
    from ser_core.presets import get_preset

    numba_dir, wav_dir = Path(sys.argv[1]), Path(sys.argv[2])
    def files():
        return {str(p.relative_to(numba_dir)): p.stat().st_mtime_ns for p in numba_dir.rglob("*.nb*")}
    seen = {}
    class Pool(cache.ProcessPoolExecutor):
        def __init__(self, *a, **k):
            seen["at_start"] = files()
            super().__init__(*a, **k)
    cache.ProcessPoolExecutor = Pool
    rng = np.random.default_rng(0)
    paths = []
    for i in range(10):
        t = np.arange(16000) / 16000
        y = 0.2 * np.sin(2 * np.pi * (120 + 15 * i) * t) + 0.01 * rng.standard_normal(t.size)
        paths.append(wav_dir / f"{i}.wav")
        sf.write(paths[-1], y.astype(np.float32), 16000)
    X = cache.extract_files(paths, get_preset("compact-trim"), cache_dir=None, n_jobs=2, progress=False,
                            augment="pitch")
    print(json.dumps({"at_start": seen["at_start"], "at_end": files(), "finite": bool(np.isfinite(X).all())}))
    """
)


def test_workers_find_every_numba_kernel_compiled_before_they_start(tmp_path):
    """Two workers compiling one librosa kernel at once can leave a mismatched pair of cache files that makes
    every later process segfault (numba/numba#10128): the parent compiles the kernels first, so the workers
    write no kernel file at all."""
    numba_dir, wav_dir = tmp_path / "numba", tmp_path / "wav"
    numba_dir.mkdir()
    wav_dir.mkdir()
    env = {**os.environ, "NUMBA_CACHE_DIR": str(numba_dir)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(numba_dir), str(wav_dir)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["finite"]
    assert r["at_start"], "the parent compiled no kernel before the workers started"
    assert r["at_end"] == r["at_start"], "workers wrote kernel files"
