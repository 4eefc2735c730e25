#!/usr/bin/env bash
# Fails if untrusted code (worker, common) includes a trusted-side header, or names a key type.
set -euo pipefail
root=${1:-.}
bad=$(grep -rnE '#include +"master/' "$root/src/worker" "$root/src/common" || true)
if [[ -n "$bad" ]]; then
  echo "trust boundary violated: untrusted code includes master headers:"
  echo "$bad"
  exit 1
fi
bad=$(grep -rnwE "Tensor|MatmulKey|ConvKey|KeyGenerator|Encryptor|Decryptor" "$root/src/worker" "$root/src/common" \
      | grep -vE "^[^:]+:[0-9]+:\s*//" || true)
if [[ -n "$bad" ]]; then
  echo "trust boundary violated: untrusted code names a plaintext tensor or key type:"
  echo "$bad"
  exit 1
fi
echo "trust boundary holds: src/worker and src/common include nothing from src/master"
