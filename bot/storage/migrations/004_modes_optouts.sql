-- Modes per channel (NULL: the server's default) and per server, personal opt-outs. A channel someone had
-- turned off stays off, one turned on stays automatic, and listen is no longer read.
ALTER TABLE channel_settings ADD COLUMN mode TEXT;
UPDATE channel_settings SET mode = CASE WHEN listen = 0 THEN 'off' ELSE 'auto' END;
CREATE TABLE guild_settings (
    guild_id BIGINT PRIMARY KEY,
    mode TEXT NOT NULL
);
CREATE TABLE optouts (
    user_id BIGINT PRIMARY KEY,
    created_at DOUBLE PRECISION NOT NULL
);
