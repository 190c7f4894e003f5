"""The studies behind the shipped choices, each run on its own: ``python -m bench.studies.<name>``.

Not part of ``python -m bench`` (its five parts stay in ``bench/``): ablation, adaptation, augmentation, copies,
frontends, transcript and vad. They share ``bench.common`` and write to ``bench/out/``.
"""
