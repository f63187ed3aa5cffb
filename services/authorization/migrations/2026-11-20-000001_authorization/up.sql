-- Authorization: policy profile versions, the catalog read model, implementation plans.

-- Every version of every jurisdiction's effective profile; a plan, agreement or grant records
-- the version it was made under and keeps it when the profile changes.
CREATE TABLE profile_versions (
    jurisdiction TEXT NOT NULL,
    version      INT NOT NULL,
    name         TEXT NOT NULL,
    level        TEXT NOT NULL,
    parent       TEXT,
    profile      JSONB NOT NULL,
    loaded_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (jurisdiction, version)
);

-- What authorization knows of the catalog, from catalog.resource.v1.
CREATE TABLE catalog_resources (
    id                    UUID PRIMARY KEY,
    jurisdiction          TEXT NOT NULL,
    code                  TEXT NOT NULL,
    name                  TEXT NOT NULL,
    version               INT NOT NULL,
    open_category         TEXT NOT NULL,
    authorizable          BOOLEAN NOT NULL,
    not_authorizable_rule TEXT,
    withdrawn             BOOLEAN NOT NULL,
    fields                JSONB NOT NULL,
    -- The envelope's aggregate version of the last event applied: older events are ignored.
    event_version         BIGINT NOT NULL,
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    id                     UUID PRIMARY KEY,
    jurisdiction           TEXT NOT NULL,
    name                   TEXT NOT NULL,
    state                  TEXT NOT NULL CHECK (state IN ('draft', 'feasibility_review', 'deliberation', 'approved', 'filed')),
    mode                   TEXT,
    contents               JSONB NOT NULL,
    resource_ids           UUID[] NOT NULL DEFAULT '{}',
    revision               INT NOT NULL DEFAULT 1,
    profile_version        INT NOT NULL,
    -- The approved contents in force while a change goes through the flow again (WF-11).
    approved_contents      JSONB,
    approved_at            TIMESTAMPTZ,
    filing_due             DATE,
    filing_due_provisional BOOLEAN NOT NULL DEFAULT false,
    filing_rule            TEXT,
    filed_at               TIMESTAMPTZ,
    filed_late             BOOLEAN,
    event_seq              BIGINT NOT NULL DEFAULT 0,
    created_by             TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX plans_filing_pending ON plans (filing_due) WHERE state = 'approved' AND filing_due IS NOT NULL;
CREATE INDEX plans_jurisdiction ON plans (jurisdiction, id);

CREATE TABLE plan_steps (
    plan_id    UUID NOT NULL REFERENCES plans (id),
    seq        INT NOT NULL,
    revision   INT NOT NULL,
    from_state TEXT,
    to_state   TEXT NOT NULL,
    actor      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (plan_id, seq)
);
