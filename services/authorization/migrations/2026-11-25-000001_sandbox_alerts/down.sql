ALTER TABLE grants DROP COLUMN destruction;
ALTER TABLE grants DROP COLUMN destroyed_at;
DROP INDEX supervision_cases_jurisdiction;
DROP TABLE sandbox_alerts;
ALTER TABLE supervision_cases DROP COLUMN alert_id;
ALTER TABLE supervision_cases DROP COLUMN rule;
