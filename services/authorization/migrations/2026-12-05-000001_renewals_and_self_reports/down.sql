DROP TABLE renewal_decisions;
DROP TABLE agreement_evaluations;
DROP INDEX sub_authorizations_renews;
ALTER TABLE sub_authorizations DROP COLUMN renewed_as;
ALTER TABLE sub_authorizations DROP COLUMN renews;
ALTER TABLE sub_authorizations DROP COLUMN renewal_requested_at;
