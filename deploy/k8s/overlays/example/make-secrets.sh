#!/bin/sh
# Make the files this overlay's Secrets are generated from, with the onestop command: keys once,
# the Redis ACL file again on every run (its rules follow the code; the passwords are kept).
# They stay on the operator's machine (secrets/ is ignored by git); keep offline copies, and
# keep secrets/tls/ca.key off the cluster (no Secret holds it).
set -eu
cd "$(dirname "$0")"
umask 077
# the adjudicators' Service (deploy/k8s/base/adjudicator.yaml) in this overlay's namespace:
# every name it is reached by goes on the adjudicators' certificate
namespace=$(sed -n 's/^namespace: *//p' kustomization.yaml)
namespace=${namespace:-default}
service=onestop-adjudicator
mkdir -p secrets/receipt-keys
chmod 700 secrets
test -f secrets/member.key || onestop keys member --out secrets/member.key
if ! test -f secrets/receipt-keys/receipt-current.pem; then
  onestop keys receipt --dir secrets/receipt-keys.new
  key=$(ls secrets/receipt-keys.new/receipt-*.pem)
  mv "$key" secrets/receipt-keys/receipt-current.pem
  printf '%s' "$(basename "$key" .pem | sed 's/^receipt-//')" > secrets/receipt-keys/signing-key-id
  rmdir secrets/receipt-keys.new
fi
test -f secrets/agency.key || onestop keys new --out secrets/agency
test -f secrets/tls/ca.pem || onestop keys tls --dir secrets/tls --host "$service" \
  --host "$service.$namespace" --host "$service.$namespace.svc" \
  --host "$service.$namespace.svc.cluster.local"
onestop keys redis --dir secrets/redis
echo "secrets ready; the agency's private key is secrets/agency.key (give it to the agency)"
