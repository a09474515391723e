#!/usr/bin/env bash
# Zero-downtime benchmark of pidock.stack.compose: probes the Inventory stack through nginx at
# 50 requests/s while (a) upgrading v1 -> v2 and (b) deploying a broken v3 that is rolled back
# automatically, and prints failed requests and the longest gap between two good answers.
#
# Baseline (plain `docker compose up -d --wait` recreating the web service, same host kind):
# 11 failed requests, longest gap 1.31 s. Target: 0 failed requests in both runs.
#
# Uses the compose_deploy Molecule scenario's host (created, converged to v1, destroyed at the
# end; KEEP=1 keeps it). Traffic goes only to the test host's loopback, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
SCENARIO=compose_deploy
HOST=compose-deploy
RATE=${RATE:-50}
REGISTRY_APP=127.0.0.1:5000/inventory/app:2

cleanup() { [ "${KEEP:-0}" = 1 ] || molecule destroy -s "$SCENARIO" >/dev/null 2>&1 || true; }
trap cleanup EXIT

echo "== preparing the host (create, prepare, converge v1)" >&2
molecule destroy -s "$SCENARIO" >/dev/null 2>&1 || true
molecule create -s "$SCENARIO" >/dev/null
molecule converge -s "$SCENARIO" >/dev/null
INVENTORY=$(ls -td ~/.ansible/tmp/molecule.*."$SCENARIO"/inventory | head -1)

deploy() {
  local version=$1; shift
  ANSIBLE_PIPELINING=true ansible-playbook -i "$INVENTORY" "molecule/$SCENARIO/deploy.yml" \
    -e "compose_version=$version" -e "__app_image=$REGISTRY_APP" -e __app_source=pull "$@" \
    > "/tmp/compose-bench-$version.log" 2>&1
}

# probe NAME COMMAND...: run COMMAND while probing; print the probe's JSON result.
probe() {
  local name=$1; shift
  docker exec "$HOST" rm -f /root/probe.stop "/root/bench-$name.json"
  docker exec -d "$HOST" python3 /root/probe.py --rate "$RATE" --max-seconds 400 --out "/root/bench-$name.json"
  sleep 2
  local rc=0
  "$@" || rc=$?
  sleep 2
  docker exec "$HOST" touch /root/probe.stop
  for _ in $(seq 30); do
    docker exec "$HOST" test -s "/root/bench-$name.json" && break
    sleep 1
  done
  echo "$name rc=$rc $(docker exec "$HOST" cat "/root/bench-$name.json")"
}

echo "== (a) upgrade v1 -> v2" >&2
A=$(probe upgrade deploy v2)
echo "== (b) broken v3, automatic rollback to v2" >&2
B=$(probe rollback deploy v3 -e '{"__app_extra_env": {"FAIL_HEALTH": "1"}}')

python3 - "$A" "$B" <<'PY'
import json, sys
print(f"{'run':<10} {'deploy rc':>9} {'requests':>9} {'failed':>7} {'longest gap s':>14}  releases seen")
for line in sys.argv[1:]:
    name, rc, body = line.split(" ", 2)
    r = json.loads(body)
    print(f"{name:<10} {rc[3:]:>9} {r['requests']:>9} {r['failed']:>7} {r['longest_gap_s']:>14}  {r['releases']}")
print("baseline (docker compose up -d --wait recreate): 11 failed, longest gap 1.31 s")
PY
