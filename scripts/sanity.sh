#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection at a real ansible_collections/pidock/stack path.
#
# Offline-safe: ansible-test builds one venv per sanity test and bootstraps pip into it with a
# script it downloads from ci-files.testing.ansible.com. A stand-in is placed in its cache first:
# it installs the pip bundled with Python (ensurepip) and runs `pip install` with the same
# arguments, so the per-test requirements still come from PyPI. HOME points under the test-ground
# cache so the user's ~/.ansible is never touched and the per-test venvs are reused between runs.
# Arguments are passed to `ansible-test sanity` (e.g. --test validate-modules).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

cache="${PIDOCK_ROOT}/.cache/sanity"
# The per-test venvs live in the machine's test-ground cache, not in the clone: a fresh clone (as
# CI makes) reuses them instead of installing every sanity test's requirements again.
mkdir -p "${PIDOCK_CACHE}" 2>/dev/null || true
if [ -w "${PIDOCK_CACHE}" ]; then export HOME="${PIDOCK_CACHE}/sanity-home"; else export HOME="${cache}/home"; fi
copy="${cache}/ansible_collections/pidock/stack"
py="$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

# The pip version ansible-test bootstraps (ansible_test/_internal/python_requirements.py).
reqs="$(python -c 'import ansible_test, os; print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py"
pip_version="$(sed -n "s/^ *pip='\([0-9.]*\)',\$/\1/p" "$reqs" | head -n1)"
[ -n "$pip_version" ] || die "cannot find the pip version ansible-test bootstraps in $reqs"
get_pip="${HOME}/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$get_pip")"
cat >"$get_pip" <<'PY'
"""Stand-in for get-pip.py: pip from ensurepip, then `pip install` with the given arguments."""
import ensurepip
import os
import subprocess
import sys

env = dict(os.environ)  # ensurepip blanks the pip configuration (PIP_CONFIG_FILE=/dev/null)
ensurepip.bootstrap()
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", *args], env=env))
PY

# A clean copy of what git would commit (tracked and new files, not ignored ones), made a git
# repository of its own: ansible-test lists files through git, and the copy sits inside this
# checkout's ignored .cache, where the outer repository would hide every file from it.
rm -rf "$copy"
mkdir -p "$copy"
(cd "$PIDOCK_ROOT" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf -) | tar -C "$copy" -xf -

git -C "$copy" init -q
git -C "$copy" add -A

log "ansible-test sanity (python ${py}) in ${copy}"
cd "$copy"
ansible-test sanity --local --python "$py" --color no "$@"
