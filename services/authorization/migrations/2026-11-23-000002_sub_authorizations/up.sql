-- Two tiers (一体统筹、两级授权, ZJK-11): a primary operator sub-authorizes a partner for one
-- scenario within its own scope and term (ZJK-17), reported before it takes effect where the
-- profile says so; partners never sub-authorize (ZJK-11); Weifang forbids it (WF-26).
CREATE TABLE sub_authorizations (
    id            UUID PRIMARY KEY,
    agreement_id  UUID NOT NULL REFERENCES agreements (id),
    jurisdiction  TEXT NOT NULL,
    operator_org  TEXT NOT NULL,
    partner_org   TEXT NOT NULL,
    partner_name  TEXT NOT NULL,
    scenario      TEXT NOT NULL,
    scope         JSONB NOT NULL,
    term_start    DATE NOT NULL,
    term_end      DATE NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('pending_report', 'effective')),
    rule          TEXT,
    reported_at   TIMESTAMPTZ,
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sub_authorizations_partner ON sub_authorizations (partner_org, id);
CREATE INDEX sub_authorizations_operator ON sub_authorizations (operator_org, id);
ALTER TABLE data_requests ADD COLUMN sub_authorization_id UUID REFERENCES sub_authorizations (id);
