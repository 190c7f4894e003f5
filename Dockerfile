# ser-bot: the speech-emotion Discord bot. One image for both ways of running it.
#   docker build -t ser-bot .
#   docker run --rm ser-bot --demo          # offline demo, no token
#
# One process, SQLite (the default: nothing to set but the token). Results, retrained models and kept clips
# live in the /data volume:
#   docker run --rm -e DISCORD_TOKEN=... -v ser-data:/data ser-bot
#   For /emotion retrain, mount the data set read-only and name it:
#   docker run --rm -e DISCORD_TOKEN=... -v ser-data:/data -v /path/to/ravdess:/ravdess:ro \
#              -e SER_RAVDESS_DIR=/ravdess ser-bot
#
# Several shard processes over one PostgreSQL (README: "Running on more than one machine"): compose.yaml
# starts PostgreSQL and two shards (`docker compose up -d --build`). By hand, every process gets the same
# database and shard count and its own shard ids; /data then holds only caches and retraining candidates:
#   docker run -d -e DISCORD_TOKEN=... -e SER_DATABASE_URL=postgresql://ser:PASSWORD@db-host:5432/ser \
#              -e SER_SHARD_COUNT=2 -e SER_SHARD_IDS=0 -v ser-shard0:/data ser-bot
#   (and the same with SER_SHARD_IDS=1 and its own volume, on this machine or another)
#   Do not set SER_MODEL_PATH on shards: it pins a process to one file, ignoring retrains and rollbacks.
#
# Retraining runs in a child process inside the container; if it runs out of memory only that run fails.
# SER_CACHE_DIR keeps the encoder features of training clips in /data: a retrain encodes only new clips.
# The Debian release is pinned: its ffmpeg is what decodes the containers libsndfile cannot (and the decoder
# forces the demuxer and allows one protocol, so no ffmpeg release can be talked into reading other files).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    SER_DATA_DIR=/data \
    SER_CACHE_DIR=/data/cache

# Debian's ffmpeg (with ffprobe) decodes M4A/AAC, WebM and the other containers libsndfile cannot read.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 --user-group ser \
    && mkdir -p /data \
    && chown ser:ser /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY ser_core ./ser_core
COPY bot ./bot
# The postgres extra (asyncpg) by default: the same image runs alone on SQLite or as shards on PostgreSQL.
ARG SER_EXTRAS=postgres
RUN pip install ".[${SER_EXTRAS}]" && rm -rf /root/.cache

USER ser
VOLUME ["/data"]
ENTRYPOINT ["ser-bot"]
