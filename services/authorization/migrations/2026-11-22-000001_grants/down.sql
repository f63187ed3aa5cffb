ALTER TABLE agreements DROP COLUMN logs_retained_until;
DROP TABLE supervision_cases;
DROP TABLE grants;
DROP TABLE data_requests;
