-- Run once by the postgres image on an empty data directory (/docker-entrypoint-initdb.d), as
-- POSTGRES_USER in POSTGRES_DB (the lake's catalog database, "termstore"). Dagster's run, event
-- and schedule storage gets a database of its own on the same server: either can be dumped,
-- restored or moved to another server without touching the other.
CREATE DATABASE dagster;
