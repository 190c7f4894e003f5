"""The preset registry: one description per preset, and the old names as views of it."""

from __future__ import annotations

import pytest

import ser_core
from ser_core import features, presets, workflow
from ser_core.errors import ConfigError


def test_the_old_names_are_views_of_the_registry():
    assert presets.names()[0] == presets.DEFAULT_PRESET and set(presets.names()) == set(presets.REGISTRY)
    for name, p in presets.REGISTRY.items():
        assert presets.PRESETS[name] is p.features and p.features.preset == name
        assert (
            presets.preset_parts(name) == (p.features, p.params) == (p.features, presets.PRESET_PARAMS[name])
        )
        assert presets.preset_augment(name) == p.augment == presets.PRESET_AUGMENT.get(name, ())
    assert (
        ser_core.PRESETS is presets.PRESETS
        and workflow.get_preset is ser_core.get_preset is presets.get_preset
    )
    assert workflow.DEFAULT_PRESET == presets.DEFAULT_PRESET == "whisper-mid"
    with pytest.warns(DeprecationWarning, match="moved to ser_core.presets.PRESETS"):
        assert features.PRESETS is presets.PRESETS
    with pytest.warns(DeprecationWarning, match="get_preset"):
        assert features.get_preset is presets.get_preset
    with pytest.warns(DeprecationWarning, match="DEFAULT_PRESET"):
        assert features.DEFAULT_PRESET == "whisper-mid"


def test_an_unknown_preset_names_the_choices_and_augment_overrides():
    with pytest.raises(ConfigError, match="choose one of: seed, rich"):
        presets.get_preset("nope")
    assert presets.preset_augment("whisper-mid", "none") == ()
    assert presets.preset_augment("seed") == () and presets.preset_augment("nope") == ()
