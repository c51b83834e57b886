#!/usr/bin/env bash
# Starts the certplane platform on this machine (completed by the gateway
# issue). Until the services exist it says what it will do.
set -euo pipefail
cat <<'TXT'
certplane: `make run` will start vault, inventory, issuance and the gateway on
the embedded SQLite default under .data/, wait until each is healthy, and print
the gRPC and HTTP addresses and where the admin token was saved. The services
land with their own issues; today this command installs and builds only.
TXT
