#!/usr/bin/env bash
# Restore a Backupchecks database from a dump made by scripts/backup-db.sh (pg_dump -Fc). This
# REPLACES what the database holds. Usage:
#   scripts/restore-db.sh DUMP [--yes] [--url URL | --compose]
#     --yes        do not ask before replacing the database
#     --url URL    restore into this database (postgresql://user:pass@host:5432/db); default: $DATABASE_URL
#     --compose    restore into the compose stack's postgres service; stops the backupchecks and worker
#                  services first and starts them again afterwards (default without --url/DATABASE_URL)
# The dump is checked before anything is dropped, and restored in one transaction: a dump that fails
# halfway leaves an empty database, never a half-restored one. Start the app afterwards: it migrates
# a dump from an older version to the current schema.
# The compose commands' $POSTGRES_* expand inside the postgres container, not here.
# shellcheck disable=SC2016
set -euo pipefail

dump='' yes='' url=${DATABASE_URL:-} mode=''
while [ $# -gt 0 ]; do
  case "$1" in
    --yes) yes=1; shift ;;
    --url) url=${2:?--url needs a URL}; mode=url; shift 2 ;;
    --compose) mode=compose; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "restore-db: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [ -z "$dump" ] || { echo "restore-db: one dump at a time" >&2; exit 2; }; dump=$1; shift ;;
  esac
done
[ -n "$dump" ] || { echo "restore-db: which dump? scripts/restore-db.sh backups/backupchecks-….dump" >&2; exit 2; }
[ -r "$dump" ] || { echo "restore-db: $dump does not exist or cannot be read" >&2; exit 2; }
[ -n "$mode" ] || { [ -n "$url" ] && mode=url || mode=compose; }
if ! pg_restore --list "$dump" > /dev/null 2>&1; then
  echo "restore-db: $dump is not a readable pg_dump custom-format file; the database was not touched" >&2
  exit 1
fi

here=$(cd "$(dirname "$0")/.." && pwd)
url=${url/postgresql+psycopg:\/\//postgresql://}
url=${url/postgresql+psycopg2:\/\//postgresql://}
masked=$(printf '%s' "$url" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')
target=$([ "$mode" = compose ] && echo "the compose stack's database" || echo "$masked")

if [ -z "$yes" ]; then
  read -r -p "restore-db: replace everything in $target with $dump? Type yes: " answer
  [ "$answer" = yes ] || { echo "restore-db: nothing done"; exit 1; }
fi

if [ "$mode" = compose ]; then
  bck() { docker compose -f "$here/deploy/backupchecks-stack.yml" "$@"; }
  bck stop backupchecks worker
  bck exec -T postgres sh -c 'dropdb -U "$POSTGRES_USER" --if-exists --force "$POSTGRES_DB" && createdb -U "$POSTGRES_USER" "$POSTGRES_DB"'
  bck exec -T postgres sh -c 'pg_restore -U "$POSTGRES_USER" -d "$POSTGRES_DB" --no-owner --exit-on-error --single-transaction' < "$dump"
  bck start backupchecks worker
else
  [ -n "$url" ] || { echo "restore-db: no database: give --url or set DATABASE_URL (or use --compose)" >&2; exit 2; }
  name=${url##*/}; name=${name%%\?*}
  [ -n "$name" ] || { echo "restore-db: the URL names no database" >&2; exit 2; }
  admin="${url%/*}/postgres"
  echo "restore-db: replacing $masked with $dump"
  psql -q -v ON_ERROR_STOP=1 -d "$admin" \
    -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\""
  pg_restore --no-owner --exit-on-error --single-transaction -d "$url" "$dump"
fi
echo "restore-db: restored $dump; start the app to bring the schema up to date"
