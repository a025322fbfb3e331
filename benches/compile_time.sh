#!/usr/bin/env bash
# Compile time of the library as a library user builds it: `cargo build --lib` with no
# default features (the toolkit alone) against all features, each a clean build into its own
# scratch target directory, alternating, in one run. Context for users, not a target.
#
#   bash benches/compile_time.sh            # ROUNDS=1 by default; JOBS=N passes -j N
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${ROUNDS:-1}"
jobs=()
[ -n "${JOBS:-}" ] && jobs=(-j "$JOBS")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say() { printf '[compile_time] %s\n' "$*" >&2; }

# Fetch once, so the clean builds time compiling, not downloading.
cargo fetch --quiet

# Seconds of one clean `cargo build --lib` with the given feature flags.
clean_build() {
  local dir="$work/target"
  rm -rf "$dir"
  local start end
  start=$(date +%s.%N)
  CARGO_TARGET_DIR="$dir" cargo build --quiet --lib "${jobs[@]}" "$@"
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}

lean_total=0
full_total=0
for round in $(seq "$rounds"); do
  say "round $round: --no-default-features"
  lean=$(clean_build --no-default-features)
  say "round $round: --all-features"
  full=$(clean_build --all-features)
  say "round $round: $lean s vs $full s"
  lean_total=$(python3 -c "print($lean_total + $lean)")
  full_total=$(python3 -c "print($full_total + $full)")
done
crates_lean=$(cargo tree -e normal --no-default-features --prefix none | sort -u | wc -l)
crates_full=$(cargo tree -e normal --all-features --prefix none | sort -u | wc -l)
python3 - "$lean_total" "$full_total" "$rounds" "$crates_lean" "$crates_full" <<'PY'
import sys
lean, full, rounds, cl, cf = (float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
print(f"cargo build --lib, clean, mean of {rounds} round(s)")
print(f"  --no-default-features: {lean / rounds:7.1f} s  ({cl} crates in the normal dependency tree)")
print(f"  --all-features:        {full / rounds:7.1f} s  ({cf} crates)")
print(f"  ratio no-default / all: {lean / full:.2f}")
PY
