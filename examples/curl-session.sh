#!/usr/bin/env bash
# A curl session with `bus gateway`: submit a UBL invoice, follow the submission, read the inbox.
#   GATEWAY=http://127.0.0.1:8080 SIREN=213105554 examples/curl-session.sh [invoice.xml]
# Needs a running gateway acting for SIREN and an ingress worker (`bus worker --processor ingress`).
set -euo pipefail
GATEWAY=${GATEWAY:-http://127.0.0.1:8080}
SIREN=${SIREN:-213105554}
FILE=${1:-$(dirname "$0")/invoice-ubl.xml}
KEY=$(cat /proc/sys/kernel/random/uuid)

# 1. Submit: 202 with the submission id, dossier, ce_id and status URL. A retry with the same
#    Idempotency-Key answers the same submission, never a second one.
answer=$(curl -sS --fail-with-body -X POST "$GATEWAY/v1/administrations/$SIREN/documents?file_name=invoice.xml" \
  -H "Content-Type: application/xml" -H "Idempotency-Key: $KEY" --data-binary "@$FILE")
echo "submitted: $answer"
status_url=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["status_url"])' <<<"$answer")

# 2. Follow the submission until the ingress worker accepted or refused it.
for _ in $(seq 1 120); do
  status=$(curl -sS --fail-with-body "$GATEWAY$status_url")
  case "$status" in *'"pending"'*) sleep 1 ;; *) break ;; esac
done
echo "status: $status"

# 3. The administration's inbox (long polling up to 10 s), then acknowledge what was read.
inbox=$(curl -sS --fail-with-body "$GATEWAY/v1/administrations/$SIREN/inbox?wait=10")
echo "inbox: $inbox"
next=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["next"])' <<<"$inbox")
curl -sS --fail-with-body -X POST "$GATEWAY/v1/administrations/$SIREN/inbox/ack" \
  -H "Content-Type: application/json" -d "{\"cursor\": \"$next\"}"
echo
