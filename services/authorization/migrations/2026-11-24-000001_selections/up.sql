-- Operator selection (WF-12, NS-12, NS-13, SX-20): an announcement with mode, scope, conditions,
-- criteria and an application deadline; applications checked for eligibility against the profile
-- (WF-13, ZJK-12, NS-11, LZ-3); scores; an award publicly noticed for the profile's period with
-- objections inside it; the agreement only afterwards, for the awarded operator.
CREATE TABLE selections (
    id                     UUID PRIMARY KEY,
    jurisdiction           TEXT NOT NULL,
    plan_id                UUID REFERENCES plans (id),
    title                  TEXT NOT NULL,
    mode                   TEXT NOT NULL,
    method                 TEXT NOT NULL CHECK (method IN ('open_tender', 'invited_tender', 'negotiation')),
    resource_ids           UUID[] NOT NULL,
    scope_description      TEXT NOT NULL,
    conditions             TEXT NOT NULL,
    criteria               TEXT NOT NULL,
    application_deadline   DATE NOT NULL,
    state                  TEXT NOT NULL CHECK (state IN ('open', 'notice', 'concluded')),
    awarded_application_id UUID,
    awarded_org            TEXT,
    notice_ends            DATE,
    notice_provisional     BOOLEAN NOT NULL DEFAULT false,
    notice_rule            TEXT,
    agreement_id           UUID,
    profile_version        INTEGER NOT NULL,
    history                JSONB NOT NULL DEFAULT '[]',
    created_by             TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at             TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX selections_jurisdiction ON selections (jurisdiction, id);

CREATE TABLE selection_applications (
    id             UUID PRIMARY KEY,
    selection_id   UUID NOT NULL REFERENCES selections (id),
    applicant_org  TEXT NOT NULL,
    applicant_name TEXT NOT NULL,
    submitted_by   TEXT NOT NULL,
    declaration    JSONB NOT NULL,
    score          DOUBLE PRECISION,
    evaluation     JSONB,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (selection_id, applicant_org)
);

CREATE TABLE selection_objections (
    id             UUID PRIMARY KEY,
    selection_id   UUID NOT NULL REFERENCES selections (id),
    application_id UUID NOT NULL REFERENCES selection_applications (id),
    raised_by      TEXT NOT NULL,
    raised_org     TEXT NOT NULL,
    grounds        TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'upheld', 'dismissed')),
    decision       JSONB,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX selection_objections_selection ON selection_objections (selection_id, id);

ALTER TABLE agreements ADD COLUMN selection_id UUID REFERENCES selections (id);
CREATE UNIQUE INDEX agreements_one_per_selection ON agreements (selection_id) WHERE selection_id IS NOT NULL;
