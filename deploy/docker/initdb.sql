-- The compose PostgreSQL holds Dagster's storage (POSTGRES_DB=dagster) and the warehouse.
CREATE DATABASE warehouse;
