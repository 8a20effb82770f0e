#!/usr/bin/env bash
# Runs the peer baseline matrix (GEMM roofline, libtorch MLP/CNN twins) and appends one JSON line per run.
#
# usage: benchmarks/run_baseline.sh BUILD_DIR [OUT.jsonl] [quick]
#   BUILD_DIR  a Meson build directory of layercache (the executables are in BUILD_DIR/benchmarks)
#   OUT.jsonl  where the JSON lines go (default: baseline-<host>-<date>.jsonl in the current directory)
#   quick      tiny sizes, to check that everything runs (seconds, numbers meaningless)
#
# The machine may be shared (other builds, other benchmarks). Before each run the script waits
# (up to MAX_WAIT seconds per run, TOTAL_WAIT in all) until less than QUIET_FRAC of the cores are
# busy, and repeats a run (up to RETRIES times) whose own "other_busy_frac" says it was
# disturbed. The last attempt is kept either way: check other_busy_frac before trusting a line.
set -euo pipefail

BUILD=${1:?usage: run_baseline.sh BUILD_DIR [OUT.jsonl] [quick]}
OUT=${2:-baseline-$(hostname)-$(date +%Y%m%d-%H%M%S).jsonl}
QUICK=${3:-}
BIN="$BUILD/benchmarks"
QUIET_FRAC=${QUIET_FRAC:-0.10}
MAX_WAIT=${MAX_WAIT:-900}        # per run
TOTAL_WAIT=${TOTAL_WAIT:-7200}    # whole script
RETRIES=${RETRIES:-3}

# Share of all cores that were busy over a 2 s window (this script itself is idle meanwhile).
busy_frac() {
  local a b
  a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
  local busy=$(( (b[1]+b[2]+b[3]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[6]+a[7]+a[8]) ))
  local idle=$(( (b[4]+b[5]) - (a[4]+a[5]) ))
  awk -v b="$busy" -v i="$idle" 'BEGIN { printf("%.3f", (b + i > 0) ? b / (b + i) : 0) }'
}

WAITED_TOTAL=0
wait_quiet() {
  local waited=0 f
  while :; do
    f=$(busy_frac)
    if awk -v f="$f" -v q="$QUIET_FRAC" 'BEGIN { exit !(f + 0 < q + 0) }'; then return 0; fi
    if (( waited >= MAX_WAIT || WAITED_TOTAL >= TOTAL_WAIT )); then
      echo "warning: machine still busy (${f} of cores); running anyway" >&2
      return 0
    fi
    sleep 10; waited=$((waited + 12)); WAITED_TOTAL=$((WAITED_TOTAL + 12))
  done
}

run() {
  local attempt line frac
  for attempt in $(seq 1 "$RETRIES"); do
    wait_quiet
    echo "+ $*" >&2
    line=$("$@")
    frac=$(sed -n 's/.*"other_busy_frac":\([-0-9.e]*\).*/\1/p' <<<"$line")
    if [[ -n "$frac" ]] && awk -v f="$frac" -v q="$QUIET_FRAC" 'BEGIN { exit !(f + 0 < q + 0) }'; then break; fi
    echo "  disturbed (other_busy_frac=${frac:-?}), attempt $attempt of $RETRIES" >&2
  done
  echo "$line" | tee -a "$OUT"
}

if [[ "$QUICK" == quick ]]; then
  MLP=(--epochs 1 --warmup 0 --max-samples 2048); CNN=(--epochs 1 --warmup 0 --max-samples 512)
  INF=(--epochs 1 --warmup 0 --max-samples 512); GEMM=(--repeats 3)
else
  MLP=(--epochs 5 --warmup 1); CNN=(--epochs 3 --warmup 1)
  INF=(--epochs 5 --warmup 1); GEMM=(--repeats 25)
fi

for t in 1 2; do
  for b in 32 128 512; do run "$BIN/gemm_roofline" --batch "$b" --threads "$t" "${GEMM[@]}"; done
done

if [[ ! -x "$BIN/torch_mlp" ]]; then
  echo "libtorch twins not built (libtorch not found at configure time); roofline only" >&2
  exit 0
fi
# With one thread libgomp has no worker to park, so its wait policy only matters for --threads 2:
# there each torch run is done with libgomp's default (spinning) and with OMP_WAIT_POLICY=PASSIVE,
# and the faster of the two is libtorch's best (on 2 cores the spinning worker starves OpenBLAS).
for cfg in "1 default" "2 default" "2 PASSIVE"; do
  read -r t policy <<<"$cfg"
  if [[ "$policy" == default ]]; then env_cmd=(env -u OMP_WAIT_POLICY); else env_cmd=(env OMP_WAIT_POLICY="$policy"); fi
  for b in 32 128 512; do run "${env_cmd[@]}" "$BIN/torch_mlp" --batch "$b" --threads "$t" "${MLP[@]}"; done
  run "${env_cmd[@]}" "$BIN/torch_cnn" --batch 128 --threads "$t" "${CNN[@]}"
  for b in 1 256; do
    run "${env_cmd[@]}" "$BIN/torch_mlp" --mode infer --batch "$b" --threads "$t" "${INF[@]}"
    run "${env_cmd[@]}" "$BIN/torch_cnn" --mode infer --batch "$b" --threads "$t" "${INF[@]}"
  done
done
echo "results in $OUT" >&2
