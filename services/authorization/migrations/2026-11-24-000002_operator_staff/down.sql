DROP TABLE operator_staff;
