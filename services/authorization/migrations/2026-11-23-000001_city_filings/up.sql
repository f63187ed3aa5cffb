-- Filings city nodes make through city.filing.v1 (SX-19 plans, SX-21 agreements, annual
-- reports), each answered once on province.receipt.v1.
CREATE TABLE city_filings (
    filing_id       UUID PRIMARY KEY,
    city            TEXT NOT NULL,
    province        TEXT,
    kind            TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    title           TEXT NOT NULL,
    decided_on      DATE,
    document_sha256 TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
    reasons         JSONB NOT NULL DEFAULT '[]'::jsonb,
    due_date        DATE,
    late            BOOLEAN NOT NULL DEFAULT false,
    rule            TEXT,
    received_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX city_filings_province ON city_filings (province, received_at);
CREATE INDEX city_filings_city ON city_filings (city, received_at);
