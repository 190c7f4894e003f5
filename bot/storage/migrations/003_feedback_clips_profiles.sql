-- Feedback on results, consented clips (their reference), voice profiles (feature statistics, no audio).
ALTER TABLE detections ADD COLUMN feedback TEXT;
ALTER TABLE detections ADD COLUMN true_label TEXT;
ALTER TABLE detections ADD COLUMN clip_path TEXT;
CREATE TABLE speaker_profiles (
    user_id BIGINT PRIMARY KEY,
    profile TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
