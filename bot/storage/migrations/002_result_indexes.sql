CREATE INDEX detections_guild_user_time ON detections (guild_id, user_id, created_at);
CREATE INDEX detections_user ON detections (user_id);
