# Cosmian KMS 5.28 as a benchmark peer: started on loopback over plain HTTP
# with SQLite and its defaults otherwise (no authentication), given one
# AES-256 key. Sourced by scripts/bench-cosmian and scripts/bench-wrk, which
# report failures with their own name in $peer_script.

peer_script="${peer_script:-bench}"

# free_port: a TCP port on 127.0.0.1 that nothing listens on.
free_port() {
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
peer_pid=""
peer_url=""

# peer_start BIN DIR PORT: starts the peer (SQLite under DIR/sqlite, its
# output in DIR/kms.log) and waits until it answers; exits with its log
# when it does not.
peer_start() {
  local bin="$1" dir="$2" port="$3"
  mkdir -p "$dir/sqlite"
  (cd "$dir" && exec "$bin" --database-type sqlite --sqlite-path "$dir/sqlite" \
    --hostname 127.0.0.1 --port "$port" >"$dir/kms.log" 2>&1) &
  peer_pid=$!
  peer_url="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    curl -sf "$peer_url/version" >/dev/null 2>&1 && return 0
    if ! kill -0 "$peer_pid" 2>/dev/null; then
      break
    fi
    sleep 0.1
  done
  echo "$peer_script: the peer did not start; its log:" >&2
  tail -30 "$dir/kms.log" >&2
  exit 1
}

# peer_stop: TERM, then KILL after 5 s; nothing when it is not running.
peer_stop() {
  [ -n "$peer_pid" ] || return 0
  kill -TERM "$peer_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$peer_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$peer_pid" 2>/dev/null || true
  wait "$peer_pid" 2>/dev/null || true
  peer_pid=""
}

# peer_kmip JSON: one KMIP 2.1 request (TTLV as JSON); prints the answer.
peer_kmip() {
  curl -sf -H 'content-type: application/json' --data-binary "$1" "$peer_url/kmip/2_1"
}

# peer_encrypt_request UID: the Encrypt of a fixed 32-byte plaintext.
peer_encrypt_request() {
  printf '%s' '{"tag":"Encrypt","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"'"$1"'"},{"tag":"Data","type":"ByteString","value":"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"}]}'
}

# peer_new_key: creates and activates an AES-256 key (a created key is
# pre-active; KMIP Activate makes it usable), checks that an Encrypt under
# it answers an EncryptResponse, and prints its UniqueIdentifier.
peer_new_key() {
  local create uid
  create='{"tag":"Create","value":[{"tag":"ObjectType","type":"Enumeration","value":"SymmetricKey"},{"tag":"Attributes","value":[{"tag":"CryptographicAlgorithm","type":"Enumeration","value":"AES"},{"tag":"CryptographicLength","type":"Integer","value":256},{"tag":"CryptographicUsageMask","type":"Integer","value":12}]}]}'
  uid="$(peer_kmip "$create" | "${PYTHON:-python3}" -c 'import json, sys
def find(node):
    if isinstance(node, dict):
        if node.get("tag") == "UniqueIdentifier":
            return node.get("value")
        return find(node.get("value"))
    if isinstance(node, list):
        for child in node:
            found = find(child)
            if found:
                return found
    return None
print(find(json.load(sys.stdin)) or "")')"
  if [ -z "$uid" ]; then
    echo "$peer_script: the peer created no key" >&2
    exit 1
  fi
  case "$(peer_kmip '{"tag":"Activate","value":[{"tag":"UniqueIdentifier","type":"TextString","value":"'"$uid"'"}]}')" in
    *'"ActivateResponse"'*) ;;
    *) echo "$peer_script: the peer did not activate its key" >&2; exit 1 ;;
  esac
  case "$(peer_kmip "$(peer_encrypt_request "$uid")")" in
    *'"EncryptResponse"'*) ;;
    *) echo "$peer_script: the peer's Encrypt did not answer an EncryptResponse" >&2; exit 1 ;;
  esac
  printf '%s\n' "$uid"
}
