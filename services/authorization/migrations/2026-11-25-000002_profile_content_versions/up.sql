-- A stored profile version follows the resolved content, not only the jurisdiction's own file:
-- when a parent's file changes (e.g. the national defaults) the child gets a new version too.
-- `file_version` is the version of the jurisdiction's own file the content was resolved from;
-- until now the two were the same.
ALTER TABLE profile_versions ADD COLUMN file_version INT;
UPDATE profile_versions SET file_version = version;
ALTER TABLE profile_versions ALTER COLUMN file_version SET NOT NULL;
