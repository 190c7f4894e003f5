"""Where the bot is assembled: ``build_bot(settings)`` is the one place (the command line, the demo, the tests
and the benchmark all use it), and ``open_bot`` turns what fails there into a one-line settings error.
"""

from __future__ import annotations

from ser_core import Model, ModelError

from .analysis import Analyses
from .bot import EmotionBot
from .download import Downloads
from .models import ModelManager
from .modelstore import ModelStore
from .profiles import Profiles
from .resilience import ResilientStorage
from .retrain import Retrainer, Retraining
from .settings import Settings, SettingsError
from .storage import Storage


async def build_bot(
    settings: Settings,
    *,
    storage: Storage | None = None,
    model: Model | None = None,
    message_content: bool = True,
    guild_ready_timeout: float = 2.0,
    **service: object,
) -> EmotionBot:
    """Open the storage (SQLite in ``SER_DATA_DIR``, or ``SER_DATABASE_URL``), load the live model and
    assemble the bot. ``model``: serve this already loaded model (it must be the file ``SER_MODEL_PATH``
    names); ``service``: ``worker``, ``charts``, ``rate_limiter``, ``command_limiter`` or ``clip_cache`` for
    ``Analyses``."""
    if storage is None:
        storage = await Storage.open(settings.database_url or settings.db_path)
    models = ModelManager(storage, fixed=settings.model_path)
    try:
        await models.start(model)
    except BaseException:
        await storage.close()
        raise
    resilient = ResilientStorage(storage)
    profiles = Profiles(resilient)
    analyses = Analyses(
        settings=settings,
        models=models,
        resilient=resilient,
        downloads=Downloads(max_bytes=settings.max_bytes),
        profiles=profiles,
        **service,  # type: ignore[arg-type]
    )
    # The retrain session reads and writes its slot under the same storage-down policy (``stored``).
    retrainer = Retrainer(models_dir=ModelStore(settings.data_dir).dir)
    return EmotionBot(
        settings=settings,
        models=models,
        resilient=resilient,
        profiles=profiles,
        analyses=analyses,
        retraining=Retraining(
            settings=settings, storage=storage, models=models, stored=resilient.stored, retrainer=retrainer
        ),
        message_content=message_content,
        guild_ready_timeout=guild_ready_timeout,
    )


async def open_bot(settings: Settings) -> EmotionBot:
    """``build_bot(settings)``, with a model or database that does not open turned into a one-line settings
    error (exit code 2)."""
    try:
        return await build_bot(settings)
    except ModelError as exc:
        where = "SER_MODEL_PATH" if settings.model_path else "the shipped model"
        raise SettingsError(f"cannot load {where}: {exc}") from None
    except Exception as exc:
        where = "SER_DATABASE_URL" if settings.database_url else f"SER_DATA_DIR={settings.data_dir}"
        raise SettingsError(f"cannot open the database ({where}): {exc}") from None
