-- What only several processes sharing one database need (SQLite records this version with nothing to do):
-- kept clips, model files and the live pointer, the retraining run's progress.
-- IF NOT EXISTS: before the one numbering, PostgreSQL made these tables at its version 5 (see postgres.py).
CREATE TABLE IF NOT EXISTS clips (
    detection_id BIGINT PRIMARY KEY REFERENCES detections (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL,
    ext TEXT NOT NULL,
    data BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS models (
    version TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    data BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS model_pointer (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    current TEXT,
    previous TEXT,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS retrain_status (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    status TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
