-- +goose Up
-- One row per cron slot, inserted by the first scheduler that claims it.
-- PostgreSQL, not Redis, is the record that a slot was handled: once
-- enqueued_at is set the slot is never enqueued again, even after Redis lost
-- everything. A claim whose scheduler died before enqueueing is taken over
-- after lease_until.
CREATE TABLE scheduler_slots (
    entry       text        NOT NULL,
    slot        timestamptz NOT NULL,
    task_id     text        NOT NULL,
    claimed_by  text        NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz NOT NULL,
    attempts    integer     NOT NULL DEFAULT 1,
    enqueued_at timestamptz,
    enqueued_by text,
    PRIMARY KEY (entry, slot)
);

-- Every running scheduler, kept fresh by its heartbeat. It counts as live
-- until live_until (three heartbeats ahead) unless it stopped cleanly.
CREATE TABLE schedulers (
    id           text        PRIMARY KEY,
    host         text        NOT NULL,
    pid          integer     NOT NULL,
    started_at   timestamptz NOT NULL,
    heartbeat_at timestamptz NOT NULL,
    live_until   timestamptz NOT NULL,
    stopped_at   timestamptz
);

-- The entries each scheduler runs, as it parsed them from its own
-- environment.
CREATE TABLE scheduler_entries (
    scheduler_id text        NOT NULL REFERENCES schedulers (id) ON DELETE CASCADE,
    entry        text        NOT NULL,
    spec         text        NOT NULL,
    env          text        NOT NULL,
    timezone     text        NOT NULL,
    next_run     timestamptz NOT NULL,
    PRIMARY KEY (scheduler_id, entry)
);

-- Every firing of every scheduler (several per slot when several schedulers
-- run), pruned after a week.
CREATE TABLE scheduler_firings (
    id           bigserial   PRIMARY KEY,
    scheduler_id text        NOT NULL,
    entry        text        NOT NULL,
    slot         timestamptz NOT NULL,
    outcome      text        NOT NULL
        CHECK (outcome IN ('enqueued', 'already_enqueued', 'already_claimed', 'error')),
    task_id      text        NOT NULL DEFAULT '',
    error        text        NOT NULL DEFAULT '',
    fired_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduler_firings_entry_slot_idx ON scheduler_firings (entry, slot DESC);
CREATE INDEX scheduler_firings_fired_at_idx ON scheduler_firings (fired_at);

-- +goose Down
DROP TABLE scheduler_firings;
DROP TABLE scheduler_entries;
DROP TABLE schedulers;
DROP TABLE scheduler_slots;
