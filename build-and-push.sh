#!/usr/bin/env bash
# Build and push the Backupchecks images, optionally cutting a release.
#
# usage: build-and-push.sh [--dry-run] [1|2|3|t]
#
#   1  patch release   0.1.0 -> 0.1.1
#   2  minor release   0.1.0 -> 0.2.0
#   3  major release   0.1.0 -> 1.0.0
#   t  test build: build and push only :dev (no version change, no commit, no tag)
#
# A release refuses a dirty git tree (untracked files included) and an existing
# tag, writes the new version to version.txt, commits it, tags v<version>,
# pushes the branch and the tag, then builds every service found as
# containers/<service>/Dockerfile (build context: the repository root) and
# pushes <image>:<version>, <image>:dev and <image>:latest.
#
# --dry-run prints every git and docker command that would change something
# (one per line, prefixed "+ ") instead of running it and writes no file;
# read-only git queries (status, branch, tag lookup) still run.
# Without an option the script asks for one when stdin is a terminal.
#
# Environment:
#   DOCKER_REGISTRY   registry host, e.g. ghcr.io or registry.example.com:5000
#                     (default: empty = Docker Hub)
#   DOCKER_NAMESPACE  account or organisation (default: backupchecks)
#                     image = [DOCKER_REGISTRY/]DOCKER_NAMESPACE/<service>
#   GIT_REMOTE        remote to push the release to (default: origin)
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

die() {
    printf 'build-and-push: %s\n' "$*" >&2
    exit 1
}

DRY_RUN=0
OPTION=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --dry-run|-n) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        1|2|3|t|T)
            [ -z "$OPTION" ] || die "only one option (1, 2, 3 or t) may be given"
            OPTION="$(printf '%s' "$1" | tr 'T' 't')" ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$REPO_ROOT"

DOCKER_REGISTRY="${DOCKER_REGISTRY:-}"
DOCKER_NAMESPACE="${DOCKER_NAMESPACE:-backupchecks}"
GIT_REMOTE="${GIT_REMOTE:-origin}"
VERSION_FILE="version.txt"

if [ -z "$OPTION" ]; then
    if [ -t 0 ]; then
        cat <<'MENU'
What do you want to build?
  1) patch release  (x.y.Z)
  2) minor release  (x.Y.0)
  3) major release  (X.0.0)
  t) test build     (:dev only, no commit, no tag)
MENU
        read -r -p "Option [1/2/3/t]: " OPTION || die "no option given"
        OPTION="$(printf '%s' "$OPTION" | tr -d '[:space:]' | tr 'T' 't')"
        case "$OPTION" in
            1|2|3|t) ;;
            *) die "unknown option: '$OPTION' (expected 1, 2, 3 or t)" ;;
        esac
    else
        usage >&2
        die "no option given and stdin is not a terminal; pass 1, 2, 3 or t"
    fi
fi

# -- helpers ----------------------------------------------------------------

# Print a command the way a shell would accept it back.
show() {
    local out="+" arg
    for arg in "$@"; do
        if [[ "$arg" =~ ^[A-Za-z0-9_./:@=,+%-]+$ ]]; then
            out+=" $arg"
        else
            out+=" '${arg//\'/\'\\\'\'}'"
        fi
    done
    printf '%s\n' "$out"
}

# Run a command that changes something: printed always, run unless --dry-run.
run() {
    show "$@"
    if [ "$DRY_RUN" -eq 0 ]; then
        "$@"
    fi
}

read_version() {
    [ -f "$VERSION_FILE" ] || die "$VERSION_FILE not found in $REPO_ROOT"
    local v
    v="$(tr -d '[:space:]' < "$VERSION_FILE")"
    [[ "$v" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "$VERSION_FILE holds '$v', expected MAJOR.MINOR.PATCH"
    printf '%s' "$v"
}

bump() {  # bump <version> <1|2|3>
    local major minor patch
    IFS=. read -r major minor patch <<< "$1"
    case "$2" in
        1) patch=$((patch + 1)) ;;
        2) minor=$((minor + 1)); patch=0 ;;
        3) major=$((major + 1)); minor=0; patch=0 ;;
    esac
    printf '%s.%s.%s' "$major" "$minor" "$patch"
}

image_name() {  # image_name <service>
    printf '%s%s/%s' "${DOCKER_REGISTRY:+$DOCKER_REGISTRY/}" "$DOCKER_NAMESPACE" "$1"
}

discover_services() {
    local dockerfile
    for dockerfile in containers/*/Dockerfile; do
        [ -f "$dockerfile" ] || continue
        basename "$(dirname "$dockerfile")"
    done
}

build_and_push() {  # build_and_push <version-label> <tag>...
    local label="$1"; shift
    local service image tag
    local -a tag_args
    for service in "${SERVICES[@]}"; do
        image="$(image_name "$service")"
        tag_args=()
        for tag in "$@"; do
            tag_args+=(-t "$image:$tag")
        done
        run docker build --pull \
            -f "containers/$service/Dockerfile" \
            "${tag_args[@]}" \
            --label "org.opencontainers.image.version=$label" \
            --label "org.opencontainers.image.title=$service" \
            .
        for tag in "$@"; do
            run docker push "$image:$tag"
        done
    done
}

# -- checks -----------------------------------------------------------------

mapfile -t SERVICES < <(discover_services)
[ "${#SERVICES[@]}" -gt 0 ] || die "no containers/*/Dockerfile found in $REPO_ROOT"

if [ "$DRY_RUN" -eq 0 ]; then
    command -v docker > /dev/null 2>&1 || die "docker is not installed or not on PATH"
fi

CURRENT="$(read_version)"
[ "$DRY_RUN" -eq 1 ] && echo "(dry run: nothing is written, committed, built or pushed)"
echo "services: ${SERVICES[*]}"

# -- test build ---------------------------------------------------------------

if [ "$OPTION" = "t" ]; then
    echo "test build of $CURRENT: pushing :dev only"
    build_and_push "$CURRENT-dev" dev
    echo "done: test build pushed as :dev"
    exit 0
fi

# -- release ------------------------------------------------------------------

command -v git > /dev/null 2>&1 || die "git is not installed or not on PATH"
git rev-parse --is-inside-work-tree > /dev/null 2>&1 || die "$REPO_ROOT is not a git work tree"

DIRTY="$(git status --porcelain --untracked-files=normal)"
if [ -n "$DIRTY" ]; then
    printf '%s\n' "$DIRTY" >&2
    die "the git tree is dirty; commit or remove these changes before a release"
fi

BRANCH="$(git symbolic-ref --quiet --short HEAD)" || die "HEAD is detached; check out the branch to release from"

NEW="$(bump "$CURRENT" "$OPTION")"
TAG="v$NEW"
if git rev-parse --quiet --verify "refs/tags/$TAG" > /dev/null; then
    die "tag $TAG already exists"
fi

echo "release: $CURRENT -> $NEW (branch $BRANCH, remote $GIT_REMOTE)"
if [ "$DRY_RUN" -eq 1 ]; then
    echo "(dry run: would write $NEW to $VERSION_FILE)"
else
    printf '%s\n' "$NEW" > "$VERSION_FILE"
fi

run git add -- "$VERSION_FILE"
run git commit -m "Release $TAG" -- "$VERSION_FILE"
run git tag -a "$TAG" -m "Release $TAG"
run git push "$GIT_REMOTE" "$BRANCH"
run git push "$GIT_REMOTE" "$TAG"

build_and_push "$NEW" "$NEW" dev latest
echo "done: released $TAG"
