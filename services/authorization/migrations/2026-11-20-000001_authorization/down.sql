DROP TABLE plan_steps;
DROP TABLE plans;
DROP TABLE catalog_resources;
DROP TABLE profile_versions;
