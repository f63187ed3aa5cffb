-- Events for operator selection (authorization.selection.v1) and sub-authorizations
-- (authorization.agreement.v1): each aggregate numbers its events. A sub-authorization ends with
-- its term or its agreement (ZJK-17).
ALTER TABLE selections ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sub_authorizations ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sub_authorizations ADD COLUMN ended_at TIMESTAMPTZ;
ALTER TABLE sub_authorizations ADD COLUMN end_reason TEXT;
ALTER TABLE sub_authorizations DROP CONSTRAINT sub_authorizations_state_check;
ALTER TABLE sub_authorizations ADD CONSTRAINT sub_authorizations_state_check
    CHECK (state IN ('pending_report', 'effective', 'ended'));
CREATE INDEX sub_authorizations_open_by_term ON sub_authorizations (term_end) WHERE state <> 'ended';
CREATE INDEX sub_authorizations_agreement ON sub_authorizations (agreement_id) WHERE state <> 'ended';
