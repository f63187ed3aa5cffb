DROP TABLE released_groups;
