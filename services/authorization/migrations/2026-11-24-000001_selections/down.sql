DROP INDEX agreements_one_per_selection;
ALTER TABLE agreements DROP COLUMN selection_id;
DROP TABLE selection_objections;
DROP TABLE selection_applications;
DROP TABLE selections;
