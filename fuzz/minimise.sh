#!/usr/bin/env bash
# Shrinks fuzz/corpus/TARGET to at most N files (default 200) that keep as much edge coverage
# as possible, for committing. `cargo fuzz cmin` keeps every file that adds any feature (hit
# counts included), which leaves thousands of files; this runs libFuzzer's merge with
# -use_counters=0 (features = edges) to get each file's edges, then a greedy set cover.
# Files whose name does not look like a libFuzzer hash (the hand-made seeds) are kept first.
# Usage: fuzz/minimise.sh TARGET [N]     (needs cargo-fuzz, nightly and python3)
set -euo pipefail
cd "$(dirname "$0")"
target=$1
max=${2:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/out"
cargo +nightly fuzz run "$target" "$work/out" "corpus/$target" -- -merge=1 -use_counters=0 \
  -merge_control_file="$work/control" -rss_limit_mb=2048 -timeout=10 >"$work/log" 2>&1 ||
  { tail -n 20 "$work/log"; exit 1; }
python3 - "$work/control" "$max" "corpus/$target" <<'PY'
import os, re, sys
control, limit, corpus = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lines = open(control).read().split("\n")
count = int(lines[0])
files = lines[2:2 + count]
edges, current = {}, None
for line in lines[2 + count:]:
    parts = line.split()
    if parts and parts[0] == "FT":
        edges[int(parts[1])] = set(map(int, parts[2:]))
size = {i: os.path.getsize(f) for i, f in enumerate(files)}
hashed = re.compile(r"^[0-9a-f]{40}$")
covered, chosen = set(), []
for i, f in enumerate(files):  # hand-made seeds first
    if i in edges and not hashed.match(os.path.basename(f)) and len(chosen) < limit:
        chosen.append(i)
        covered |= edges[i]
while len(chosen) < limit:
    best = max((i for i in edges if i not in chosen),
               key=lambda i: (len(edges[i] - covered), -size[i]), default=None)
    if best is None or not edges[best] - covered:
        break
    chosen.append(best)
    covered |= edges[best]
keep = {os.path.basename(files[i]) for i in chosen}
for name in os.listdir(corpus):
    if name not in keep:
        os.remove(os.path.join(corpus, name))
total = set().union(*edges.values()) if edges else set()
print(f"{corpus}: kept {len(keep)} files, {sum(size[i] for i in chosen)} bytes, "
      f"{len(covered)} of {len(total)} edges")
PY
