DROP INDEX sub_authorizations_agreement;
DROP INDEX sub_authorizations_open_by_term;
-- The two-state schema cannot say "ended": such rows read as effective again.
UPDATE sub_authorizations SET state = 'effective' WHERE state = 'ended';
ALTER TABLE sub_authorizations DROP CONSTRAINT sub_authorizations_state_check;
ALTER TABLE sub_authorizations ADD CONSTRAINT sub_authorizations_state_check
    CHECK (state IN ('pending_report', 'effective'));
ALTER TABLE sub_authorizations DROP COLUMN end_reason;
ALTER TABLE sub_authorizations DROP COLUMN ended_at;
ALTER TABLE sub_authorizations DROP COLUMN event_seq;
ALTER TABLE selections DROP COLUMN event_seq;
