#!/usr/bin/env bash
# Back up the Backupchecks database: one pg_dump in custom format (compressed), checked, then kept
# under a dated name. Usage:
#   scripts/backup-db.sh [--dir DIR] [--keep N] [--url URL | --compose]
#     --dir DIR    where the dumps go (default: backups/)
#     --keep N     afterwards keep only the newest N dumps in DIR (default: keep all)
#     --url URL    dump this PostgreSQL database (postgresql://user:pass@host:5432/db); default: $DATABASE_URL
#     --compose    dump the compose stack's postgres service (deploy/backupchecks-stack.yml); the default
#                  when neither --url nor DATABASE_URL is given
# The app may keep running: pg_dump takes a consistent snapshot. Prints the file written; exit 0 only
# when the dump was complete and readable. The password is never printed.
# The compose commands' $POSTGRES_* expand inside the postgres container, not here.
# shellcheck disable=SC2016
set -euo pipefail

dir=backups keep='' url=${DATABASE_URL:-} mode=''
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a folder}; shift 2 ;;
    --keep) keep=${2:?--keep needs a number}; shift 2 ;;
    --url) url=${2:?--url needs a URL}; mode=url; shift 2 ;;
    --compose) mode=compose; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "backup-db: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$keep" ] && ! [[ "$keep" =~ ^[1-9][0-9]*$ ]]; then
  echo "backup-db: --keep must be a whole number of at least 1, got '$keep'" >&2; exit 2
fi
[ -n "$mode" ] || { [ -n "$url" ] && mode=url || mode=compose; }

here=$(cd "$(dirname "$0")/.." && pwd)
# libpq does not know SQLAlchemy's driver suffix (postgresql+psycopg://).
url=${url/postgresql+psycopg:\/\//postgresql://}
url=${url/postgresql+psycopg2:\/\//postgresql://}
masked=$(printf '%s' "$url" | sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#')

mkdir -p "$dir"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dir/backupchecks-$stamp.dump"
while [ -e "$final" ]; do  # two backups within one second: the second waits for its own name
  sleep 1; stamp=$(date -u +%Y%m%dT%H%M%SZ); final="$dir/backupchecks-$stamp.dump"
done
part="$final.part"
trap 'rm -f "$part"' EXIT

if [ "$mode" = compose ]; then
  echo "backup-db: dumping the compose stack's database to $final"
  docker compose -f "$here/deploy/backupchecks-stack.yml" exec -T postgres \
    sh -c 'pg_dump -U "$POSTGRES_USER" -d "$POSTGRES_DB" -Fc' > "$part"
else
  [ -n "$url" ] || { echo "backup-db: no database: give --url or set DATABASE_URL (or use --compose)" >&2; exit 2; }
  echo "backup-db: dumping $masked to $final"
  pg_dump -Fc -d "$url" -f "$part"
fi

# A dump that pg_restore cannot list (cut short, not a dump) is not kept.
if ! pg_restore --list "$part" > /dev/null 2>&1; then
  echo "backup-db: the dump is not readable (cut short?); nothing kept" >&2
  exit 1
fi
mv "$part" "$final"
trap - EXIT
echo "backup-db: wrote $final ($(wc -c < "$final") bytes)"

if [ -n "$keep" ]; then
  # Dated names sort in time order: everything but the newest N goes.
  mapfile -t old < <(find "$dir" -maxdepth 1 -name 'backupchecks-*.dump' -printf '%f\n' | sort | head -n -"$keep")
  for f in "${old[@]}"; do
    rm -f -- "$dir/$f"
    echo "backup-db: removed $dir/$f (keeping the newest $keep)"
  done
fi
