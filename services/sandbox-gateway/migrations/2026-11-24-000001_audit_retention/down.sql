DROP INDEX workspaces_retention;
ALTER TABLE workspaces DROP COLUMN logs_purged_at;
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (WF-30)' USING ERRCODE = 'insufficient_privilege';
END;
$$;
ALTER TABLE audit_log DROP COLUMN purged_at;
