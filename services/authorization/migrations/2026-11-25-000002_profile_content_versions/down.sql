ALTER TABLE profile_versions DROP COLUMN file_version;
