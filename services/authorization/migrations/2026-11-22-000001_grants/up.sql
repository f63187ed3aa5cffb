-- Scenario data requests ("one scenario, one application", ZJK-5), their approvals (WF-18,
-- NS-20), the grants they create, and supervision cases (SX-23, ZJK-34, ZJK-35, WF-24, WF-27).
CREATE TABLE data_requests (
    id                UUID PRIMARY KEY,
    agreement_id      UUID NOT NULL REFERENCES agreements (id),
    jurisdiction      TEXT NOT NULL,
    requester_org     TEXT NOT NULL,
    requested_by      TEXT NOT NULL,
    scenario          TEXT NOT NULL,
    -- [{resource_id, fields, justifications: {field: text}}]
    scope             JSONB NOT NULL,
    development_plan  TEXT NOT NULL,
    valid_until       DATE NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('submitted', 'approved', 'rejected')),
    -- Who must approve, and what they said: {role: {by, org, decision, opinion, at}}.
    approvals         JSONB NOT NULL DEFAULT '{}'::jsonb,
    needs_joint_review BOOLEAN NOT NULL,
    compliance_report TEXT,
    -- NS-20: the joint review meeting's decision with each member's opinion.
    joint_review      JSONB,
    grant_id          UUID,
    profile_version   INT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX data_requests_jurisdiction ON data_requests (jurisdiction, id);

CREATE TABLE grants (
    id                   UUID PRIMARY KEY,
    agreement_id         UUID NOT NULL REFERENCES agreements (id),
    request_id           UUID NOT NULL REFERENCES data_requests (id),
    jurisdiction         TEXT NOT NULL,
    principal_org        TEXT NOT NULL,
    operator_org         TEXT NOT NULL,
    scenario             TEXT NOT NULL,
    scope                JSONB NOT NULL,
    min_group_size       INT NOT NULL,
    valid_from           DATE NOT NULL,
    valid_until          DATE NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'revoked', 'expired')),
    -- The supervision case that suspended it, so passing that case reinstates exactly these.
    suspended_by_case    UUID,
    profile_version      INT NOT NULL,
    log_retention_months INT NOT NULL,
    logs_retained_until  DATE,
    event_seq            BIGINT NOT NULL DEFAULT 0,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX grants_operator ON grants (operator_org, state);
CREATE INDEX grants_agreement ON grants (agreement_id);
CREATE INDEX grants_principal ON grants (principal_org, id);
-- The expiry sweep reads only what is due: proportional to the number due, not stored.
CREATE INDEX grants_expiring ON grants (valid_until) WHERE state IN ('active', 'suspended');

CREATE TABLE supervision_cases (
    id            UUID PRIMARY KEY,
    jurisdiction  TEXT NOT NULL,
    operator_org  TEXT NOT NULL,
    agreement_id  UUID NOT NULL REFERENCES agreements (id),
    grounds       TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('open', 'rectification', 'passed', 'failed')),
    -- The rule under which access was closed during rectification (SX-23 may, ZJK-34 must).
    access_rule   TEXT,
    opened_by     TEXT NOT NULL,
    history       JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE agreements ADD COLUMN logs_retained_until DATE;
