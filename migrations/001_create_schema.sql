-- Everything of this project lives in schema aigcspace.
CREATE SCHEMA IF NOT EXISTS aigcspace;
