"""Retraining: ``session`` (the slot, the decision, the install; what the cog calls) over ``job`` (one
training run in a child process, both ends of it). Nothing here talks to Discord.
"""

from .job import (
    STAGE_NAMES,
    TRAINING_ENV_KEYS,
    Candidate,
    Progress,
    Retrainer,
    RetrainError,
    format_elapsed,
    new_version,
    training_env,
)
from .session import (
    MAX_DROP,
    RETRAIN_ENDED,
    Retraining,
    RetrainRefused,
    cap_kept_clips,
    cooldown_left,
    decide,
    live_accuracy,
    progress_message,
)

__all__ = [
    "MAX_DROP",
    "RETRAIN_ENDED",
    "STAGE_NAMES",
    "TRAINING_ENV_KEYS",
    "Candidate",
    "Progress",
    "RetrainError",
    "RetrainRefused",
    "Retrainer",
    "Retraining",
    "cap_kept_clips",
    "cooldown_left",
    "decide",
    "format_elapsed",
    "live_accuracy",
    "new_version",
    "progress_message",
    "training_env",
]
