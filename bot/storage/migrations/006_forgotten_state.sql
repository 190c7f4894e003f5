-- When each person last asked to be forgotten (a note in flight then is not stored), small state of the
-- bot's own (the end of the last retraining run), results by channel (history by visibility).
CREATE TABLE forgotten (
    user_id BIGINT PRIMARY KEY,
    at DOUBLE PRECISION NOT NULL
);
CREATE TABLE bot_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE INDEX detections_guild_channel ON detections (guild_id, channel_id);
