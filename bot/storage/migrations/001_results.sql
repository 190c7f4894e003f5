-- Results, and whether the bot listens in a channel (004 turns that into a mode).
CREATE TABLE detections (
    id BIGSERIAL PRIMARY KEY,
    guild_id BIGINT,
    channel_id BIGINT,
    user_id BIGINT NOT NULL,
    message_id BIGINT,
    created_at DOUBLE PRECISION NOT NULL,
    label TEXT NOT NULL,
    confidence DOUBLE PRECISION NOT NULL,
    probabilities TEXT NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    model_version TEXT NOT NULL
);
CREATE TABLE channel_settings (
    channel_id BIGINT PRIMARY KEY,
    guild_id BIGINT,
    listen INTEGER NOT NULL DEFAULT 1
);
