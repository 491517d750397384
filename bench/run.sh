#!/usr/bin/env bash
# bench/run.sh: end-to-end benchmark of `chainfix inspect` over generated certificate trees,
# against `openssl verify` over the same leaves. See bench/README.md.
#
#   bash bench/run.sh                 # 10k and 100k certificates, 5 runs each
#   SIZES="10000" RUNS=3 bash bench/run.sh
#
# Needs: cargo, openssl, GNU time (/usr/bin/time). Corpora are generated once into
# $BENCH_DIR (default target/bench) and reused while their manifest matches.
set -euo pipefail

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"10000 100000"}
RUNS=${RUNS:-5}
OPENSSL_RUNS=${OPENSSL_RUNS:-3}
SEED=${SEED:-1}
BENCH_DIR=${BENCH_DIR:-target/bench}
AT=2026-06-01T00:00:00Z
AT_EPOCH=1780272000 # the same instant, for openssl -attime
JOBS=$(nproc)

[ -x /usr/bin/time ] || { echo "bench/run.sh: needs GNU time (apt install time)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "bench/run.sh: needs openssl" >&2; exit 2; }

echo "building release binaries..." >&2
cargo build --release --locked --quiet --bin chainfix --example gen-corpus
CHAINFIX=target/release/chainfix
GEN=target/release/examples/gen-corpus
mkdir -p "$BENCH_DIR"

# Median of the numbers on stdin.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# run_timed LOG CMD...: runs CMD with stdout to /dev/null, appends "wall_s max_rss_kb" to LOG.
# (GNU time also writes "Command exited with non-zero status N" into -o: dropped.)
run_timed() {
	local log=$1
	shift
	/usr/bin/time -f "TIMED %e %M" -o "$log.one" "$@" >/dev/null 2>>"$log.stderr" || true
	sed -n 's/^TIMED //p' "$log.one" >>"$log"
}

corpus() {
	local n=$1 dir=$BENCH_DIR/corpus-$1
	if [ -f "$dir/manifest.json" ] && grep -q "\"certs\": $n," "$dir/manifest.json" &&
		grep -q "\"seed\": $SEED," "$dir/manifest.json"; then
		echo "reusing $dir" >&2
	else
		rm -rf "$dir"
		echo "generating $n certificates into $dir..." >&2
		"$GEN" --certs "$n" --seed "$SEED" --out "$dir" >&2
	fi
}

rows=()
for n in $SIZES; do
	corpus "$n"
	dir=$BENCH_DIR/corpus-$n
	leaves=$(wc -l <"$dir/leaves.txt")
	logs=$BENCH_DIR/log-$n
	rm -f "$logs".*
	chainfix_cmd=("$CHAINFIX" inspect "$dir/tree" --intermediates "$dir/intermediates.pem"
		--roots "$dir/roots.pem" --no-default-roots --offline --json --at "$AT")
	# Warm the page cache (and check the run works) before timing.
	"${chainfix_cmd[@]}" >/dev/null 2>&1 || [ $? -le 2 ]
	for _ in $(seq "$RUNS"); do run_timed "$logs.chainfix" "${chainfix_cmd[@]}"; done
	# The baseline: openssl verify over every leaf file, batched over all cores. It checks
	# the first certificate of each file against the same roots and intermediates.
	openssl_cmd=(bash -c "cd '$dir' && xargs -P $JOBS -n 500 openssl verify -attime $AT_EPOCH \
		-CAfile roots.pem -untrusted intermediates.pem <leaves.txt")
	for _ in $(seq "$OPENSSL_RUNS"); do run_timed "$logs.openssl" "${openssl_cmd[@]}"; done
	cf_wall=$(cut -d' ' -f1 "$logs.chainfix" | median)
	cf_rss=$(cut -d' ' -f2 "$logs.chainfix" | median)
	os_wall=$(cut -d' ' -f1 "$logs.openssl" | median)
	os_rss=$(cut -d' ' -f2 "$logs.openssl" | median)
	rows+=("$(awk -v n="$n" -v l="$leaves" -v cw="$cf_wall" -v cr="$cf_rss" -v ow="$os_wall" -v or="$os_rss" 'BEGIN {
		printf "| %7d | %6d | %8.2f | %9.0f | %11.0f | %8.2f | %9.0f | %5.1fx |",
			n, l, cw, cr / 1024, l / cw, ow, or / 1024, ow / cw }')")
done

# Start-up: one leaf file, default roots (the embedded store is parsed lazily).
one=$(head -n 1 "$BENCH_DIR/corpus-$(echo "$SIZES" | awk '{ print $1 }')/leaves.txt")
one_dir=$BENCH_DIR/corpus-$(echo "$SIZES" | awk '{ print $1 }')
start_ms=$(for _ in $(seq 21); do
	s=$(date +%s%N)
	"$CHAINFIX" inspect "$one_dir/$one" --offline --at "$AT" >/dev/null 2>&1 || true
	e=$(date +%s%N)
	echo $(((e - s) / 1000))
done | median | awk '{ printf "%.1f", $1 / 1000 }')

echo
echo "chainfix $("$CHAINFIX" --version | awk '{ print $2 }'), $(nproc) cores, $(openssl version | awk '{ print $1, $2 }'); medians of $RUNS chainfix and $OPENSSL_RUNS openssl runs"
echo
echo "|   certs | leaves | chainfix s | chainfix MB | leaves/s | openssl s | openssl MB | ratio |"
echo "|--------:|-------:|-----------:|------------:|---------:|----------:|-----------:|------:|"
for r in "${rows[@]}"; do echo "$r"; done
echo
echo "start-up, \`chainfix inspect one.pem --offline\` (default roots): ${start_ms} ms (median of 21)"
