-- Authorized operation agreements (授权运营协议, SX-22).
CREATE TABLE agreements (
    id                  UUID PRIMARY KEY,
    jurisdiction        TEXT NOT NULL,
    plan_id             UUID REFERENCES plans (id),
    operator_org        TEXT NOT NULL,
    operator_name       TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('draft', 'signed', 'active', 'suspended', 'terminated', 'expired')),
    -- [{resource_id, fields: [...]}]
    scope               JSONB NOT NULL,
    resource_ids        UUID[] NOT NULL,
    products            JSONB NOT NULL,
    revenue_sharing     TEXT,
    -- WF-15: the finance department's opinion on revenue sharing, {by, org, opinion, at}.
    finance_opinion     JSONB,
    term_start          DATE NOT NULL,
    term_end            DATE NOT NULL,
    profile_version     INT NOT NULL,
    signed_at           TIMESTAMPTZ,
    filing_due          DATE,
    filing_due_provisional BOOLEAN NOT NULL DEFAULT false,
    filing_rule         TEXT,
    filed_at            TIMESTAMPTZ,
    renewal_requested_at TIMESTAMPTZ,
    termination_reason  TEXT,
    event_seq           BIGINT NOT NULL DEFAULT 0,
    created_by          TEXT NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agreements_jurisdiction ON agreements (jurisdiction, id);
CREATE INDEX agreements_operator ON agreements (operator_org, id);
-- The expiry sweep reads only what is due.
CREATE INDEX agreements_expiring ON agreements (term_end) WHERE state IN ('active', 'suspended', 'signed');

CREATE TABLE agreement_steps (
    agreement_id UUID NOT NULL REFERENCES agreements (id),
    seq          INT NOT NULL,
    from_state   TEXT,
    to_state     TEXT NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (agreement_id, seq)
);
