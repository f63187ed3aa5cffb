-- Supervision from the development environment's audit (WF-30): a refusal-burst alert on
-- sandbox.audit.v1 opens a case against the operator whose grants the alerted organisation
-- works under; every alert is kept, and one that matches no agreement stays visible unmatched.
ALTER TABLE supervision_cases ADD COLUMN rule TEXT;
ALTER TABLE supervision_cases ADD COLUMN alert_id UUID;

CREATE TABLE sandbox_alerts (
    -- The alert's event id: a redelivered alert is the same row.
    id             UUID PRIMARY KEY,
    jurisdiction   TEXT NOT NULL,
    principal      TEXT NOT NULL,
    principal_org  TEXT NOT NULL,
    -- The rule of the profile's threshold, as the gateway applied it.
    rule           TEXT NOT NULL,
    refusals       INTEGER NOT NULL,
    threshold      INTEGER NOT NULL,
    reason         TEXT NOT NULL,
    alerted_at     TIMESTAMPTZ NOT NULL,
    -- The case it opened; NULL when the organisation has no agreement in the jurisdiction.
    case_id        UUID REFERENCES supervision_cases (id),
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_alerts_jurisdiction ON sandbox_alerts (jurisdiction, id);
CREATE INDEX supervision_cases_jurisdiction ON supervision_cases (jurisdiction, id);

-- ZJK-31: the gateway's record of the irreversible destruction of a grant's workspace.
ALTER TABLE grants ADD COLUMN destroyed_at TIMESTAMPTZ;
ALTER TABLE grants ADD COLUMN destruction JSONB;
