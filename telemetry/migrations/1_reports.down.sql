DROP TABLE cell_counters;
DROP TABLE cells;
DROP TABLE reports;
