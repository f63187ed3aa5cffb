-- Catalog: resources with their field schemas and version history, registrations, objections.
-- pg_trgm makes substring search on names (Chinese included) an index scan.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE TABLE resources (
    id                    UUID PRIMARY KEY,
    jurisdiction          TEXT NOT NULL,
    code                  TEXT NOT NULL,
    name                  TEXT NOT NULL,
    source_unit           TEXT NOT NULL,
    sector                TEXT NOT NULL,
    format                TEXT NOT NULL,
    update_frequency      TEXT NOT NULL,
    open_category         TEXT NOT NULL,
    security_grade        TEXT NOT NULL,
    quality_requirements  TEXT NOT NULL DEFAULT '',
    fields                JSONB NOT NULL,
    provenance            JSONB NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('draft', 'submitted', 'published', 'rejected', 'withdrawn')),
    -- Published version: 0 until first published, +1 for every published revision.
    version               INT NOT NULL DEFAULT 0,
    -- Every event about this resource gets the next number (the envelope's aggregate_version).
    event_seq             BIGINT NOT NULL DEFAULT 0,
    authorizable          BOOLEAN NOT NULL,
    not_authorizable_rule TEXT,
    rejection_reason      TEXT,
    withdrawal_reason     TEXT,
    -- A proposed new version of a published resource, awaiting the data management department.
    pending_revision      JSONB,
    revision_note         TEXT,
    created_by            TEXT NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at          TIMESTAMPTZ,
    CONSTRAINT resources_code_unique UNIQUE (jurisdiction, code)
);
CREATE INDEX resources_name_trgm ON resources USING gin (name gin_trgm_ops);
CREATE INDEX resources_code ON resources (code);
CREATE INDEX resources_state_id ON resources (state, id);
CREATE INDEX resources_sector ON resources (sector, id);

CREATE TABLE resource_versions (
    resource_id   UUID NOT NULL REFERENCES resources (id),
    version       INT NOT NULL,
    content       JSONB NOT NULL,
    published_by  TEXT NOT NULL,
    published_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (resource_id, version)
);

-- One counter row per jurisdiction and year, incremented in the registration's transaction:
-- the row lock serializes concurrent registrations, and a rolled-back registration rolls back
-- its number, so numbers are unique and gap-free (SX-6, ZJK-22).
CREATE TABLE registration_counters (
    jurisdiction TEXT NOT NULL,
    year         INT NOT NULL,
    last_seq     BIGINT NOT NULL,
    PRIMARY KEY (jurisdiction, year)
);

CREATE TABLE registrations (
    number          TEXT PRIMARY KEY,
    jurisdiction    TEXT NOT NULL,
    year            INT NOT NULL,
    seq             BIGINT NOT NULL,
    subject_kind    TEXT NOT NULL CHECK (subject_kind IN ('resource', 'product')),
    subject_id      UUID NOT NULL,
    subject_version INT NOT NULL,
    registered_by   TEXT NOT NULL,
    registered_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT registrations_seq_unique UNIQUE (jurisdiction, year, seq),
    CONSTRAINT registrations_subject_unique UNIQUE (subject_kind, subject_id)
);

CREATE TABLE objections (
    id                   UUID PRIMARY KEY,
    resource_id          UUID NOT NULL REFERENCES resources (id),
    field                TEXT,
    jurisdiction         TEXT NOT NULL,
    description          TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('open', 'accepted', 'rectified', 'rejected')),
    filed_by             TEXT NOT NULL,
    filed_org            TEXT NOT NULL,
    due_date             DATE NOT NULL,
    due_date_provisional BOOLEAN NOT NULL,
    deadline_rule        TEXT NOT NULL,
    step_seq             INT NOT NULL DEFAULT 1,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX objections_pending_due ON objections (due_date) WHERE state IN ('open', 'accepted');
CREATE INDEX objections_resource ON objections (resource_id, id);

CREATE TABLE objection_steps (
    objection_id UUID NOT NULL REFERENCES objections (id),
    seq          INT NOT NULL,
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    actor        TEXT NOT NULL,
    actor_org    TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (objection_id, seq)
);
