#!/usr/bin/env bash
# `make audit` (and CI, before the tests): known vulnerabilities in the pinned requirements.
#
# pip-audit reads containers/backupchecks/requirements.txt and requirements-dev.txt as written
# (--no-deps --disable-pip: nothing is resolved or installed; every line is pinned) and asks the
# vulnerability service about each pin. The decision:
#
#   exit 0  no known vulnerability;
#   exit 0  the service could not be reached (network error, time-out, or it knew none of the
#           pins): "pip-audit: vulnerability service not reachable; skipped";
#   exit 1  a known vulnerability (the table above says which, and the fixed version);
#   exit 1  pip-audit failed otherwise, or is not installed.
#
# AUDIT_TIMEOUT (seconds, default 120) bounds the whole run.
set -uo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=(containers/backupchecks/requirements.txt requirements-dev.txt)
SKIPPED="pip-audit: vulnerability service not reachable; skipped"
# What pip-audit (requests, urllib3) prints when the service can't be reached.
UNREACHABLE='Could not connect to|network may be blocking|ConnectionError|ConnectTimeout|ReadTimeout|Max retries exceeded|NameResolutionError|Temporary failure in name resolution|Failed to establish a new connection|ProxyError|SSLError|timed out'

if ! command -v pip-audit >/dev/null 2>&1; then
  echo "pip-audit is not installed; \`make audit\` installs requirements-dev.txt into .venv first." >&2
  exit 1
fi

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
args=(--progress-spinner off --no-deps --disable-pip)
for file in "${REQUIREMENTS[@]}"; do args+=(-r "$file"); done

timeout -k 10 "${AUDIT_TIMEOUT:-120}" pip-audit "${args[@]}" >"$out" 2>&1
rc=$?
cat "$out"

if grep -qE 'Found [0-9]+ known vulnerabilit' "$out"; then
  echo "pip-audit: known vulnerabilities in the pinned requirements (above): raise those pins." >&2
  exit 1
fi
if [ "$rc" -eq 0 ]; then
  # A service that answers "unknown" for every pin (a mirror, a filtering proxy) checked nothing.
  pinned=$(grep -hoE '^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^]]*\])?==' "${REQUIREMENTS[@]}" | sort -u | wc -l)
  unknown=$(grep -c 'Dependency not found on PyPI' "$out" || true)
  if [ "$pinned" -gt 0 ] && [ "$unknown" -ge "$pinned" ]; then
    echo "$SKIPPED (it knew none of the $pinned pinned packages)"
  fi
  exit 0
fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "$SKIPPED (no answer within ${AUDIT_TIMEOUT:-120} s)"
  exit 0
fi
if grep -qE "$UNREACHABLE" "$out"; then
  echo "$SKIPPED"
  exit 0
fi
echo "pip-audit failed (exit $rc, above); fix that before the vulnerability check can run." >&2
exit 1
