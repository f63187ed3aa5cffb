-- The sandbox gateway's own tables. Staged data lives in schema `staged`, one table per dataset
-- version; each workspace is a schema of its own (`ws_<grant>`) with a role of its own.

CREATE SCHEMA IF NOT EXISTS staged;
REVOKE ALL ON SCHEMA staged FROM PUBLIC;

-- Read model of catalog.resource.v1: field schemas with sensitivity and PII kind.
CREATE TABLE resources (
    id uuid PRIMARY KEY,
    jurisdiction text NOT NULL,
    code text NOT NULL,
    name text NOT NULL,
    version integer NOT NULL,
    open_category text NOT NULL,
    withdrawn boolean NOT NULL,
    fields jsonb NOT NULL,
    event_version bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- A load of a resource's data: all or nothing, a new version each time.
CREATE TABLE datasets (
    id uuid PRIMARY KEY,
    resource_id uuid NOT NULL REFERENCES resources (id),
    version integer NOT NULL,
    table_name text NOT NULL,
    format text NOT NULL,
    row_count bigint NOT NULL,
    byte_count bigint NOT NULL,
    loaded_by text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (resource_id, version)
);

-- Masks per class (a PII kind, or a sensitivity without one): keep this many leading and
-- trailing characters, replace the rest. Data, so a province can change them.
CREATE TABLE masks (
    class text PRIMARY KEY,
    keep_leading integer NOT NULL CHECK (keep_leading >= 0),
    keep_trailing integer NOT NULL CHECK (keep_trailing >= 0),
    description text NOT NULL
);
INSERT INTO masks (class, keep_leading, keep_trailing, description) VALUES
    ('id_card', 6, 0, 'ID-card numbers keep the region code'),
    ('phone', 3, 4, 'phone numbers keep 3+4 digits'),
    ('name', 1, 0, 'names keep the surname'),
    ('address', 6, 0, 'addresses keep the district'),
    ('bank_account', 0, 4, 'bank accounts keep the last 4 digits'),
    ('other', 0, 0, 'other personal information is masked entirely'),
    ('trade_secret', 0, 0, 'trade secrets are masked entirely'),
    ('personal', 0, 0, 'personal information without a kind is masked entirely'),
    ('sensitive_personal', 0, 0, 'sensitive personal information without a kind is masked entirely');

-- One workspace per grant (authorization.grant.v1).
CREATE TABLE workspaces (
    grant_id uuid PRIMARY KEY,
    agreement_id text NOT NULL,
    jurisdiction text NOT NULL,
    principal_org text NOT NULL,
    scenario text NOT NULL,
    schema_name text NOT NULL UNIQUE,
    role_name text NOT NULL UNIQUE,
    -- open | closed (suspended) | destroyed (revoked or expired)
    state text NOT NULL,
    min_group_size integer NOT NULL,
    min_group_rule text NOT NULL,
    valid_until text NOT NULL,
    log_retention_months integer NOT NULL,
    scope jsonb NOT NULL,
    -- The relations the query check sees: name, columns with sensitivity, openness.
    relations jsonb NOT NULL,
    event_version bigint NOT NULL,
    opened_at timestamptz NOT NULL DEFAULT now(),
    changed_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    -- Logs are kept until then (WF-24, ZJK-31, NS-16), then purged.
    logs_kept_until timestamptz
);
CREATE INDEX workspaces_principal ON workspaces (principal_org);

-- ZJK-31: irreversible destruction, with a record.
CREATE TABLE destructions (
    id uuid PRIMARY KEY,
    grant_id uuid NOT NULL,
    reason text NOT NULL,
    rule text NOT NULL,
    tables jsonb NOT NULL,
    destroyed_at timestamptz NOT NULL DEFAULT now()
);

-- WF-30: every action recorded, append-only and hash-chained.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    prev_hash text NOT NULL,
    hash text NOT NULL,
    at_micros bigint NOT NULL,
    principal text NOT NULL,
    principal_org text NOT NULL,
    grant_id uuid,
    action text NOT NULL,
    query text NOT NULL,
    decision text NOT NULL,
    rule text NOT NULL,
    rows_read bigint NOT NULL,
    rows_returned bigint NOT NULL,
    result_digest text NOT NULL
);
CREATE INDEX audit_log_refusals ON audit_log (principal, at_micros) WHERE decision = 'refused';
CREATE INDEX audit_log_grant ON audit_log (grant_id);

CREATE TABLE audit_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (true, 0, repeat('0', 64));

-- The audit log cannot be changed, not even by the service's own role.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only (WF-30)' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- Refusal-burst alerts raised, one per principal and window.
CREATE TABLE refusal_alerts (
    principal text NOT NULL,
    window_start_micros bigint NOT NULL,
    refusals integer NOT NULL,
    PRIMARY KEY (principal, window_start_micros)
);
