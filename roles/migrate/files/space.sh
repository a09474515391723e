# For each path argument (sh -s PATH...): "<path> <mount point> <available bytes>", from its nearest
# existing ancestor, so a directory the migration will create is measured where it will live.
for p in "$@"; do
  q=$p
  while [ ! -e "$q" ]; do q=$(dirname "$q"); done
  df -PB1 "$q" | awk -v p="$p" 'NR == 2 { print p, $6, $4 }'
done
