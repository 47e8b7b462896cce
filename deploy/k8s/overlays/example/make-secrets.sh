#!/bin/sh
# Make the files this overlay's Secrets are generated from, once, with the onestop command.
# They stay on the operator's machine (secrets/ is ignored by git); keep offline copies.
set -eu
cd "$(dirname "$0")"
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
echo "secrets ready; the agency's private key is secrets/agency.key (give it to the agency)"
