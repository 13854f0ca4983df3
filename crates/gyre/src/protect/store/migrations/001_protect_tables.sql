-- Gyre protective storage, schema version 1 (docs/persistence.md).
-- One table per feature; created_ms is the Unix ms of the newest change
-- that made the entry (its version); expire_at is Unix seconds, 0 = never.
-- A removal keeps the row for an hour as a marker (removed = true,
-- expire_at = removal + 3600) so that an older change written late cannot
-- bring the entry back; markers are never loaded and are purged by expiry.
CREATE TABLE IF NOT EXISTS gyre_user_block (
    user_id     text   PRIMARY KEY,
    expire_at   bigint NOT NULL DEFAULT 0,
    created_ms  bigint NOT NULL,
    reason      text,
    removed     boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS gyre_user_block_expire_at
    ON gyre_user_block (expire_at) WHERE expire_at > 0;

CREATE TABLE IF NOT EXISTS gyre_token_revoke (
    uid         text   PRIMARY KEY,
    expire_at   bigint NOT NULL DEFAULT 0,
    created_ms  bigint NOT NULL,
    reason      text,
    removed     boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS gyre_token_revoke_expire_at
    ON gyre_token_revoke (expire_at) WHERE expire_at > 0;

-- channel = '' for an invalidation of connection tokens.
CREATE TABLE IF NOT EXISTS gyre_user_tokens_invalidate (
    user_id       text   NOT NULL,
    channel       text   NOT NULL DEFAULT '',
    issued_before bigint NOT NULL,
    expire_at     bigint NOT NULL DEFAULT 0,
    created_ms    bigint NOT NULL,
    reason        text,
    removed       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (user_id, channel)
);
CREATE INDEX IF NOT EXISTS gyre_user_tokens_invalidate_expire_at
    ON gyre_user_tokens_invalidate (expire_at) WHERE expire_at > 0;

-- Bumped by every write that changed something, and announced with it: a
-- node reloads a feature when the version is not the one it heard.
CREATE TABLE IF NOT EXISTS gyre_protect_version (
    feature  text   PRIMARY KEY,
    version  bigint NOT NULL DEFAULT 0
);
INSERT INTO gyre_protect_version (feature) VALUES
    ('user_block'), ('token_revoke'), ('user_tokens_invalidate')
    ON CONFLICT DO NOTHING;
