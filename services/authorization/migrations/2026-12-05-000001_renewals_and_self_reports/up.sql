-- ZJK-17: a partner applies to the primary operator, in the last 3 months of its secondary
-- authorization, to sign again; the primary re-signs it as a new sub-authorization from the day
-- after the old one's last day. One re-signing per sub-authorization.
ALTER TABLE sub_authorizations ADD COLUMN renewal_requested_at TIMESTAMPTZ;
ALTER TABLE sub_authorizations ADD COLUMN renews UUID REFERENCES sub_authorizations (id);
ALTER TABLE sub_authorizations ADD COLUMN renewed_as UUID REFERENCES sub_authorizations (id);
CREATE UNIQUE INDEX sub_authorizations_renews ON sub_authorizations (renews) WHERE renews IS NOT NULL;

-- LZ-6, LZ-11: the implementing institution evaluates the operator's performance (revenue, cost
-- control, profitability, contribution) and, after the term ends, decides on that evaluation
-- and on market demand whether to renew: a new agreement (renewed_as) or a refusal, once.
CREATE TABLE agreement_evaluations (
    id            UUID PRIMARY KEY,
    agreement_id  UUID NOT NULL REFERENCES agreements (id),
    jurisdiction  TEXT NOT NULL,
    period        TEXT NOT NULL,
    indicators    JSONB NOT NULL,
    result        TEXT NOT NULL CHECK (result IN ('excellent', 'good', 'qualified', 'unqualified')),
    summary       TEXT NOT NULL,
    evaluated_by  TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX agreement_evaluations_agreement ON agreement_evaluations (agreement_id, id);

CREATE TABLE renewal_decisions (
    agreement_id   UUID PRIMARY KEY REFERENCES agreements (id),
    evaluation_id  UUID NOT NULL REFERENCES agreement_evaluations (id),
    decision       TEXT NOT NULL CHECK (decision IN ('renew', 'refuse')),
    market_demand  TEXT NOT NULL,
    reason         TEXT NOT NULL,
    rule           TEXT NOT NULL,
    renewed_as     UUID REFERENCES agreements (id),
    decided_by     TEXT NOT NULL,
    decided_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
