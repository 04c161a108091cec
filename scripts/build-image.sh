#!/usr/bin/env bash
# Build the lsq-sink image on a machine that cannot pull from any registry, then smoke-test it.
#
#   scripts/build-image.sh            # base (once), build, smoke test
#   SMOKE=0 scripts/build-image.sh    # base and build only
#   BUILD_FLAGS=--no-cache scripts/build-image.sh
#
# Needs root and: apt-get install -y podman buildah runc fuse-overlayfs slirp4netns uidmap debootstrap
# (Debian bookworm). What it does:
#   1. a containers.conf that works in this sandbox (runc instead of crun on hybrid cgroups; ulimits
#      within the hard limits, since there is no CAP_SYS_RESOURCE);
#   2. a local base image $BASE from debootstrap (Debian bookworm, python3 = 3.11 at /usr/bin), made
#      once and reused; the Dockerfile's PYTHON_BASE build argument points at it instead of the
#      default python:3.11-slim (Python at /usr/local/bin), which cannot be pulled here;
#   3. podman build --pull=never, with the proxy's CA bundle as a build secret ($CA): pip and uv
#      inside the build trust it, and it is in no layer of the image;
#   4. the smoke test: --version, --help, then `run` as a read-only, non-root container with all
#      capabilities dropped, against a Kafka that is not there; probes the health port, checks
#      that nothing was written, stops it with SIGTERM and checks the exit code.
# Containers it starts are removed on exit (by their id). Not part of `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
IMAGE=${IMAGE:-localhost/lsq-sink:$VERSION}
BASE=${BASE:-localhost/debian-py:bookworm}
SCRATCH=${SCRATCH:-${TMPDIR:-/tmp}/lsq-sink-image}
CA=${CA:-/etc/ssl/certs/ca-certificates.crt}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SMOKE=${SMOKE:-1}
BUILD_FLAGS=${BUILD_FLAGS:-}
HEALTH_PORT=${HEALTH_PORT:-19400}

started=$(date +%s.%N)
say() { awk -v s="$started" -v n="$(date +%s.%N)" -v m="$*" 'BEGIN { printf "[%6.1fs] %s\n", n - s, m }'; }
fail() { say "FAILED: $*"; exit 1; }

for tool in podman debootstrap curl; do
  command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install -y podman buildah runc \
fuse-overlayfs slirp4netns uidmap debootstrap curl"
done
mkdir -p "$SCRATCH"

# 1. containers.conf
export CONTAINERS_CONF="$SCRATCH/containers.conf"
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
runtime = "runc"
EOF

# 2. the local base image
if podman image exists "$BASE"; then
  say "base $BASE exists"
else
  say "debootstrap (Debian bookworm, python3, python3-venv, ca-certificates)"
  rm -rf "$SCRATCH/rootfs"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$SCRATCH/rootfs" "$DEBIAN_MIRROR" >"$SCRATCH/debootstrap.log"
  rm -rf "$SCRATCH"/rootfs/var/cache/apt/* "$SCRATCH"/rootfs/var/lib/apt/lists/*
  # An imported tarball has no config: give it the PATH and locale a python image has.
  tar -C "$SCRATCH/rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$BASE" >/dev/null
  rm -rf "$SCRATCH/rootfs"
  say "base $BASE imported"
fi

# 3. the build
say "podman build $IMAGE (PYTHON_BASE=$BASE)"
# shellcheck disable=SC2086 # BUILD_FLAGS is a list of flags
podman build --pull=never $BUILD_FLAGS \
  --build-arg PYTHON_BASE="$BASE" \
  --build-arg VERSION="$VERSION" \
  --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  --secret id=ca,src="$CA" \
  --tag "$IMAGE" .
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
say "built $IMAGE: $((size / 1000000)) MB ($size bytes)"
[[ $SMOKE == 1 ]] || exit 0

# 4. the smoke test
container=""
cleanup() { if [[ -n $container ]]; then podman rm --force --time 0 "$container" >/dev/null; fi; }
trap cleanup EXIT
locked=(--read-only --read-only-tmpfs=false --cap-drop=ALL --security-opt=no-new-privileges)

[[ $(podman image inspect --format '{{.Config.User}}' "$IMAGE") == 10001:10001 ]] \
  || fail "image user is not 10001:10001"
out=$(podman run --rm "${locked[@]}" "$IMAGE" --version)
[[ $out == "lsq-sink $VERSION" ]] || fail "--version printed: $out"
say "--version: $out"
podman run --rm "${locked[@]}" "$IMAGE" | grep -q '^usage: lsq-sink' || fail "--help"
say "--help (the default CMD): ok"
inside=$(podman run --rm "${locked[@]}" --entrypoint /bin/sh "$IMAGE" -c \
  'id -u; id -g; command -v uv pip || true; python -v -c "import connector.cli" 2>&1 | grep -c "code object from .*connector/__pycache__/cli\\." || true')
[[ $inside == $'10001\n10001\n1' ]] || fail "expected uid/gid 10001, no uv or pip, compiled bytecode used; got: $inside"
say "uid/gid 10001, no uv or pip on PATH, connector's compiled bytecode is used"

smoke="$SCRATCH/smoke"
mkdir -p "$smoke"
cat >"$smoke/lead.avsc" <<'EOF'
{"type": "record", "name": "Lead", "namespace": "smoke",
 "fields": [{"name": "email", "type": ["null", "string"], "default": null},
            {"name": "first_name", "type": ["null", "string"], "default": null}]}
EOF
cat >"$smoke/config.yaml" <<'EOF'
kafka:
  bootstrap_servers: 127.0.0.1:1   # nothing listens: Kafka is unreachable
  group_id: lsq-sink-smoke
accounts:
  main:
    async_host: https://127.0.0.1:3
routes:
  - name: leads
    topics: [crm.public.leads]
    account: main
    value_schema: /etc/lsq-sink/lead.avsc
    mapping:
      search_by: EmailAddress
      lead: {EmailAddress: email, FirstName: first_name}
output:
  results_topic: lsq.results
  dead_letter_topic: lsq.dead-letters
logging:
  progress_interval_seconds: 2
EOF
container=$(podman run --detach "${locked[@]}" \
  --volume "$smoke:/etc/lsq-sink:ro" --publish "127.0.0.1:$HEALTH_PORT:9400" \
  --env LSQ_SINK_ACCOUNTS__MAIN__ACCESS_KEY=smoke-access \
  --env LSQ_SINK_ACCOUNTS__MAIN__SECRET_KEY=smoke-secret \
  --env LSQ_SINK_ACCOUNTS__MAIN__API_KEY=smoke-api \
  "$IMAGE" run --config /etc/lsq-sink/config.yaml)
say "run: container ${container:0:12} started"
livez=000
for _ in $(seq 25); do
  livez=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/livez" || true)
  [[ $livez == 000 ]] || break
  sleep 0.2
done
[[ $livez == 200 ]] || fail "/livez answered $livez (000: nothing listens on the health port)"
readyz=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HEALTH_PORT/readyz")
[[ $readyz == 503 ]] || fail "/readyz answered $readyz without a broker"
say "/livez 200, /readyz 503 (no broker), /metrics $(curl -s \
  "http://127.0.0.1:$HEALTH_PORT/metrics" | grep -vc '^#') samples"
sleep 3
say "process in the container: $(podman top "$container" user group args | tail -n 1)"
# podman itself mounts hosts and resolv.conf, which shows as "C /etc", and creates the mountpoint of
# the config volume, which shows as "A /etc/lsq-sink" (even for /bin/true); anything else is a write.
changes=$(podman diff "$container" | grep -v -x -E 'C /(etc|run)|A /etc/lsq-sink' || true)
[[ -z $changes ]] || fail "the container wrote to its filesystem: $changes"
say "podman diff: nothing written (only podman's own mounts and mountpoints in /etc)"
say "podman stop (SIGTERM, SIGKILL after 30 s)"
podman stop --time 30 "$container" >/dev/null
code=$(podman inspect --format '{{.State.ExitCode}}' "$container")
podman logs "$container" >"$SCRATCH/smoke.log" 2>&1
say "SIGTERM -> exit code $code; $(wc -l <"$SCRATCH/smoke.log") log lines in $SCRATCH/smoke.log"
grep -E '"event": "connector\.(started|stopping)"' "$SCRATCH/smoke.log" | cut -c1-160
tail -n 1 "$SCRATCH/smoke.log"
[[ $code == 0 ]] || fail "exit code $code after SIGTERM"
grep -q '"event": "connector.started"' "$SCRATCH/smoke.log" || fail "no connector.started line"
say "smoke test passed"
