-- Query-set overlap control (WF-26, ZJK-21): the workspace rows behind every group the gateway
-- released under a grant, as a compressed bitmap of row ids (roaring, portable format). A new
-- answer is released only if it cannot be combined with these into a group below the minimum.
-- Destroyed with the workspace (ZJK-31).
CREATE TABLE released_groups (
    grant_id      UUID NOT NULL,
    audit_seq     BIGINT NOT NULL,
    -- The workspace's data versions the row ids belong to (`relation@version,…`).
    data_versions TEXT NOT NULL,
    row_count     BIGINT NOT NULL,
    row_set       BYTEA NOT NULL
);
CREATE INDEX released_groups_grant ON released_groups (grant_id, data_versions, audit_seq);
