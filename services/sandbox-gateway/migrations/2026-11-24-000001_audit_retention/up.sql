-- Logs are kept for the grant's retention period after its workspace is destroyed (WF-24,
-- ZJK-31, NS-16: at least 6 months), then purged. A purge clears what a record says about the
-- person and the query but keeps its place in the chain (seq, links, hash, time, action,
-- decision, rule, counts), so the chain still verifies. The trigger allows nothing else: no
-- deletion, no other change, and a purge only of records whose retention has ended.
ALTER TABLE audit_log ADD COLUMN purged_at timestamptz;

CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.purged_at IS NULL AND NEW.purged_at IS NOT NULL
       AND NEW.seq = OLD.seq AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
       AND NEW.at_micros = OLD.at_micros AND NEW.grant_id IS NOT DISTINCT FROM OLD.grant_id
       AND NEW.action = OLD.action AND NEW.decision = OLD.decision AND NEW.rule = OLD.rule
       AND NEW.rows_read = OLD.rows_read AND NEW.rows_returned = OLD.rows_returned
       AND NEW.query = '' AND NEW.principal = '' AND NEW.principal_org = '' AND NEW.result_digest = ''
       AND EXISTS (SELECT 1 FROM workspaces w WHERE w.grant_id = OLD.grant_id
                   AND w.state = 'destroyed' AND w.logs_kept_until < now())
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_log is append-only (WF-30); only records past their retention may be purged (WF-24)'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

ALTER TABLE workspaces ADD COLUMN logs_purged_at timestamptz;
CREATE INDEX workspaces_retention ON workspaces (logs_kept_until) WHERE state = 'destroyed' AND logs_purged_at IS NULL;
