-- Listing notes newest first pages by (created_at, id); this index serves it.

-- +goose Up
CREATE INDEX notes_recent_idx ON notes (created_at DESC, id DESC);

-- +goose Down
DROP INDEX notes_recent_idx;
