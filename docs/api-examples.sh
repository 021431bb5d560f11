#!/usr/bin/env bash
# Backupchecks JSON API examples (docs/api.md): list the customers, list last night's failed runs,
# and mark a run reviewed. Needs bash, curl and jq.
#
#   export BACKUPCHECKS_URL=https://backupchecks.example.com   # default http://127.0.0.1:8080
#   export BACKUPCHECKS_TOKEN=bc_...                           # user menu -> API tokens
#   docs/api-examples.sh            # marks the first failed run of last night reviewed
#   docs/api-examples.sh RUN_ID     # marks that run reviewed
#
# "Last night" is since 00:00 UTC yesterday; BACKUPCHECKS_SINCE=YYYY-MM-DD sets another day.
# Marking a run reviewed needs a read-write token of an operator or admin.
set -euo pipefail

BASE="${BACKUPCHECKS_URL:-http://127.0.0.1:8080}"
BASE="${BASE%/}/api/v1"
if [ -z "${BACKUPCHECKS_TOKEN:-}" ]; then
    echo "Set BACKUPCHECKS_TOKEN to an API token (user menu -> API tokens)." >&2
    exit 2
fi
SINCE="${BACKUPCHECKS_SINCE:-$(date -u -d yesterday +%F 2>/dev/null || date -u -v-1d +%F)}"

# api METHOD PATH [curl options...]: the answer's JSON on stdout; an API error ends the script
# with its code and message.
api() {
    local method=$1 path=$2 out status body
    shift 2
    out=$(curl -sS -X "$method" -H "Authorization: Bearer ${BACKUPCHECKS_TOKEN}" -H "Accept: application/json" \
        -w '\n%{http_code}' "$@" "${BASE}${path}")
    status=${out##*$'\n'}
    body=${out%$'\n'*}
    if [ "$status" -ge 400 ]; then
        echo "Error ${status} on ${method} ${path}: $(jq -r '.error.code + ": " + .error.message' <<<"$body")" >&2
        exit 1
    fi
    printf '%s\n' "$body"
}

# 1. Every customer, page by page (the cursor of each page leads to the next one).
echo "Customers:"
cursor=""
while :; do
    page=$(api GET "/customers?limit=200${cursor:+&cursor=${cursor}}")
    jq -r '.data[] | "  \(.id)\t\(.name)\t\(.job_count) job\(if .job_count == 1 then "" else "s" end)"' <<<"$page"
    cursor=$(jq -r '.next_cursor // empty' <<<"$page")
    [ -n "$cursor" ] || break
done

# 2. Last night's failures: runs with status Failed that started since SINCE.
echo "Failed runs since ${SINCE}:"
failures=$(api GET "/runs?status=Failed&from=${SINCE}&limit=200")
jq -r '.data[] | "  run \(.id)\t\(.customer_name) / \(.job_name)\t\(.started_at)\t\(.message // "")"' <<<"$failures"
if [ "$(jq '.data | length' <<<"$failures")" -eq 0 ]; then
    echo "  none"
fi

# 3. Mark a run reviewed: the one given, else the first failure.
run_id="${1:-$(jq -r '.data[0].id // empty' <<<"$failures")}"
if [ -z "$run_id" ]; then
    echo "No run to mark reviewed."
    exit 0
fi
result=$(api POST "/runs/${run_id}/review")
if [ "$(jq -r '.changed' <<<"$result")" = "true" ]; then
    echo "Marked run ${run_id} reviewed."
else
    echo "Run ${run_id} was already reviewed."
fi
