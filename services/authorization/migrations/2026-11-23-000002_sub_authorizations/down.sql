ALTER TABLE data_requests DROP COLUMN sub_authorization_id;
DROP TABLE sub_authorizations;
