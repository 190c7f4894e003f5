# ser-bot: the speech-emotion Discord bot.
#   docker build -t ser-bot .
#   docker run --rm -e DISCORD_TOKEN=... -v ser-data:/data ser-bot
#   docker run --rm ser-bot --demo          # offline demo, no token
#   For /emotion retrain, mount the data set read-only and name it:
#   docker run --rm -e DISCORD_TOKEN=... -v ser-data:/data -v /path/to/ravdess:/ravdess:ro \
#              -e SER_RAVDESS_DIR=/ravdess ser-bot
#   Retraining runs in a child process inside the container; if it runs out of memory only that run fails.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    SER_DATA_DIR=/data

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
RUN pip install . && rm -rf /root/.cache

USER ser
VOLUME ["/data"]
ENTRYPOINT ["ser-bot"]
