#!/usr/bin/env bash
# The README's demo command: installs what is missing, builds astro-tokend and
# astro-api-sim, then walks through the product against the simulator on
# loopback: validate, plan, apply, a no-op plan, an out-of-band change detected
# and put back, the daemon putting back a change on its own, and a rotated
# token reaching its consumer through a delivery hook. It ends by printing
# where the daemon's status page is; with --keep the daemon and the
# simulator stay up (until Ctrl-C) so that the page can be opened.
#
# Everything it creates lives in .demo/ (removed at the start of each run).
# Token values go to sink files only; the demo never prints them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
keep=false
if [[ "${1:-}" == "--keep" ]]; then keep=true; fi

scripts/setup.sh
echo "== building astro-tokend and astro-api-sim"
cmake -S . -B build -G Ninja -DTOKEND_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build --target astro-tokend astro-api-sim

tokend="$root/build/astro-tokend"
sim="$root/build/astro-api-sim"
org=clx42kkcm01fo01o06agtmshg
work="$root/.demo"
rm -rf "$work"
mkdir -p "$work/tokens.d"
cp config/tokens.d/*.toml "$work/tokens.d/"

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# Waits (at most $2 seconds) until the command $1 succeeds.
wait_until() {
  local deadline=$((SECONDS + $2))
  until eval "$1"; do
    if ((SECONDS >= deadline)); then echo "demo: timed out waiting for: $1" >&2; exit 1; fi
    sleep 0.1
  done
}

# The simulator and astro-tokend share a throwaway bearer token through the
# environment (never argv).
ASTRO_API_TOKEN=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
export ASTRO_API_TOKEN

step "starting astro-api-sim on 127.0.0.1 (port chosen by the kernel)"
"$sim" --listen 127.0.0.1:0 --port-file "$work/sim.port" --org "$org" \
  --bearer-token-env ASTRO_API_TOKEN --data "$work/sim-data.json" 2>"$work/sim.log" &
pids+=($!)
wait_until '[[ -s "$work/sim.port" ]]' 10
port=$(<"$work/sim.port")
api="http://127.0.0.1:$port"
echo "astro-api-sim serves $api"

# A consumer's delivery hook: astro-tokend runs it after each value reaches
# its sink, with the value on stdin only. It tells what it got, never the value.
cat >"$work/consumer-hook.sh" <<'HOOK'
#!/bin/sh
value=$(cat)
printf '%s %s: %s: a new value reached the consumer (%d bytes, token %s, sink %s)\n' \
  "$(date -u +%H:%M:%SZ)" "$ASTRO_TOKEND_ADDRESS" "$ASTRO_TOKEND_ACTION" "${#value}" \
  "$ASTRO_TOKEND_TOKEN_ID" "$(basename "$ASTRO_TOKEND_SINK")" >>"$1"
HOOK
chmod 0755 "$work/consumer-hook.sh"

cat >"$work/astro-tokend.toml" <<EOF
# Demo config: the example specs of config/tokens.d against astro-api-sim.
[astro]
organization_id = "$org"
api_url = "$api"
[specs]
paths = ["tokens.d"]
[state]
path = "state/state.db"
[secrets]
dir = "tokens"
on_delivery = ["$work/consumer-hook.sh", "$work/consumer.log"]
[reconcile]
interval = "2s"
jitter = "0s"
[server]
listen = "127.0.0.1:0"
EOF
cfg=(-c "$work/astro-tokend.toml" --no-color)

step "astro-tokend validate"
"$tokend" validate "${cfg[@]}"

step "astro-tokend plan   (dry run: five tokens to create)"
set +e
"$tokend" plan "${cfg[@]}" --detailed-exitcode
echo "(exit code $? — 2 means changes are pending)"
set -e

step "astro-tokend apply --auto-approve"
"$tokend" apply "${cfg[@]}" --auto-approve

step "the secrets went to sink files (mode 0600), not to state or output"
ls -l "$work/tokens"

step "astro-tokend plan   (nothing to do now)"
"$tokend" plan "${cfg[@]}" --detailed-exitcode
echo "(exit code 0 — no changes)"

step "someone renames a token in the Astro UI (simulated out of band)"
id=$("$tokend" state show astro_api_token.workspace_token "${cfg[@]}" | sed -n 's/^ *id *= *"\(.*\)"$/\1/p')
curl -sf -X PATCH "$api/_sim/tokens/$id" -H 'Content-Type: application/json' \
  -d '{"name":"renamed by hand"}' >/dev/null
echo "token $id is now called \"renamed by hand\""

step "astro-tokend plan   (drift detected)"
set +e
"$tokend" plan "${cfg[@]}" --detailed-exitcode
echo "(exit code $?)"
set -e

step "astro-tokend apply --auto-approve   (puts it back)"
"$tokend" apply "${cfg[@]}" --auto-approve

step "astro-tokend run   (the daemon, reconciling every 2s)"
"$tokend" run "${cfg[@]}" 2>"$work/daemon.log" &
pids+=($!)
wait_until 'grep -q "serving metrics" "$work/daemon.log"' 20
metrics=$(sed -n 's/.*msg="serving metrics" listen=\([0-9.:]*\).*/\1/p' "$work/daemon.log" | head -n 1)
echo "daemon running; metrics on http://$metrics/metrics"

step "another out-of-band change: a role is stripped from a token"
id=$("$tokend" state show astro_api_token.workspace_token_with_deployment_role "${cfg[@]}" 2>/dev/null |
  sed -n 's/^ *id *= *"\(.*\)"$/\1/p')
curl -sf -X PATCH "$api/_sim/tokens/$id" -H 'Content-Type: application/json' \
  -d '{"roles":[{"role":"WORKSPACE_OWNER","entityId":"clx42sxw501gl01o0gjenthnh","entityType":"WORKSPACE"}]}' >/dev/null
echo "token $id now has only WORKSPACE_OWNER"
roles_of() { curl -sf "$api/_sim/tokens/$1" | grep -o '"role":"[A-Z_]*"' | sort | tr '\n' ' '; }
wait_until '[[ "$(roles_of "$id")" == *DEPLOYMENT_ADMIN* ]]' 30
echo "the daemon put it back on its own: roles are now $(roles_of "$id")"

step "what the daemon logged"
grep -E 'msg="(reconcile|change|applied|cycle)' "$work/daemon.log" | tail -n 8 || tail -n 8 "$work/daemon.log"

step "a few of its metrics"
curl -sf "http://$metrics/metrics" | grep -E '^astro_tokend_(reconciles_total|managed_tokens|drifted_tokens|api_requests_total)' | head -n 12

step "astro-tokend history"
"$tokend" history "${cfg[@]}" --limit 5 2>/dev/null || true

step "a token's sink file is lost: the daemon rotates the token and runs its delivery hook"
rm "$work/tokens/workspace_token.token"
wait_until 'grep -q "astro_api_token.workspace_token: rotate:" "$work/consumer.log" 2>/dev/null' 30
echo "what the consumer's delivery hook printed (the creates, then the rotation):"
cat "$work/consumer.log"

step "the status page"
curl -sf "http://$metrics/" >"$work/status.html"
curl -sf "http://$metrics/status.json" >"$work/status.json"
grep -o '"address" *: *"[^"]*"' "$work/status.json" | sed 's/.*: *"\(.*\)"/  \1/' | sort -u
echo "(saved as $work/status.html and $work/status.json)"

step "every API request went to the Astro API v1 routes"
curl -sf "$api/_sim/requests" >"$work/requests.json"
v1=$(grep -o '"path":"/v1/organizations/[^"]*"' "$work/requests.json" | wc -l)
all=$(grep -o '"path":"[^"]*"' "$work/requests.json" | wc -l)
echo "$v1 of $all requests under /v1/organizations/$org/"
if ((v1 != all)); then
  echo "demo: requests outside the v1 routes:" >&2
  grep -o '"path":"[^"]*"' "$work/requests.json" | grep -v '"/v1/organizations/' | sort | uniq -c >&2
  exit 1
fi

echo
if $keep; then
  echo "Status page: http://$metrics/ (data: http://$metrics/status.json, metrics: http://$metrics/metrics)"
  echo "The daemon and the simulator keep running; press Ctrl-C to stop them."
  wait
else
  echo "Demo finished. Files are in $work; the daemon and the simulator are stopped now."
  echo "Status page: http://$metrics/ while the daemon ran (run scripts/demo.sh --keep to open it)."
fi
