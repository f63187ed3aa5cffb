-- Operator staff (NS-14, WF-30): each person of an operator or partner who works with the data is
-- registered with a signed confidentiality agreement, real-name verified and filed by the data
-- management department before a grant names them.
CREATE TABLE operator_staff (
    id                         UUID PRIMARY KEY,
    jurisdiction               TEXT NOT NULL,
    org                        TEXT NOT NULL,
    subject                    TEXT NOT NULL,
    name                       TEXT NOT NULL,
    -- The last four characters of the identity document only; the number itself is not kept.
    id_document_tail           TEXT NOT NULL,
    confidentiality_agreement  JSONB NOT NULL,
    state                      TEXT NOT NULL CHECK (state IN ('registered', 'verified', 'deregistered')),
    verification               JSONB,
    registered_by              TEXT NOT NULL,
    created_at                 TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                 TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX operator_staff_current ON operator_staff (org, subject) WHERE state <> 'deregistered';
CREATE INDEX operator_staff_jurisdiction ON operator_staff (jurisdiction, id);
