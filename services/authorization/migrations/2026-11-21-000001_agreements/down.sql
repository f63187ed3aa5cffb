DROP TABLE agreement_steps;
DROP TABLE agreements;
