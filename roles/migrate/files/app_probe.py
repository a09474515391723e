# Runs inside the app container (python3 -c): GET each path on the app's port, print one JSON
# object {path: {"status": code, "body": parsed JSON or text}}. Exits non-zero while the app is
# not listening yet, so the caller retries.
import json
import sys
import urllib.error
import urllib.request

port, paths = sys.argv[1], sys.argv[2:]
out = {}
for path in paths:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            out[path] = {"status": resp.status, "body": json.loads(resp.read() or b"null")}
    except urllib.error.HTTPError as exc:
        out[path] = {"status": exc.code, "body": exc.read().decode(errors="replace")[:300]}
print(json.dumps(out))
