-- Automatic transcripts per channel (NULL: the server's) and per server, the server's language.
-- Transcripts themselves are never stored.
ALTER TABLE channel_settings ADD COLUMN transcripts INTEGER;
ALTER TABLE guild_settings ADD COLUMN transcripts INTEGER;
ALTER TABLE guild_settings ADD COLUMN language TEXT;
