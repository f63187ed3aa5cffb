DROP TABLE objection_steps;
DROP TABLE objections;
DROP TABLE registrations;
DROP TABLE registration_counters;
DROP TABLE resource_versions;
DROP TABLE resources;
