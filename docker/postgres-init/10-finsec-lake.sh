#!/bin/sh
# First start of the Postgres volume: a database for the lake's catalog (FINSEC_CATALOG_URL), beside Dagster's.
# An existing volume: docker-compose -f docker/docker-compose.yml exec postgres createdb -U dagster finsec_lake
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"${FINSEC_LAKE_DB:-finsec_lake}\" OWNER \"$POSTGRES_USER\""
