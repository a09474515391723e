# Runs inside the stack's PostgreSQL image (sh -s): its server version, bundled extensions, locales.
echo "version=$(postgres --version 2>/dev/null || true)"
for c in /usr/share/postgresql/*/extension/*.control /usr/local/share/postgresql/extension/*.control; do
  [ -f "$c" ] || continue
  v=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$c")
  echo "extension=$(basename "$c" .control)=$v"
done
locale -a 2>/dev/null | sed 's/^/locale=/'
