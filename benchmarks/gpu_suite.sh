#!/usr/bin/env bash
# The large-codebook and residual tokenizer benchmarks (issue 24), three seeds each, on one CUDA GPU, one part at a
# time:
#
#     bash benchmarks/gpu_suite.sh k1024      # or k8192, k16384, long, residual, sweep; from the repository root
#     python benchmarks/render_results.py     # then render benchmarks/results/*.json into benchmarks/RESULTS.md
#
# Each part runs its benchmarks at once, each with a few worker processes (--jobs) sharing the GPU, so step times
# are measured under that sharing (each results file records its --jobs). Logs go to outputs/gpu_suite/. Every
# command is stopped after $SUITE_TIMEOUT seconds (default 540); a stopped benchmark's file keeps the quantizers it
# finished and names how many (settings.stopped_after). $SUITE_JOBS sets each benchmark's --jobs (default 6; 4 for
# the sweep's three benchmarks) when several parts run at once.
#
# Sizing, as measured on an H200 (2026-12-04, before the Sinkhorn kernel's GPU blocks grew from 8 to 256 MiB): one
# optvq-mnist step with 4-head OptVQ at K = 16384 took 0.12 s on its own, and all six parts started at once (21
# processes on 16 cores) finished no benchmark in 490 s. Run one part per call, under an outer limit that leaves time
# to copy the results off. Second try (2026-12-04, 256 MiB blocks): k8192, k16384 and residual at once with
# SUITE_JOBS=3 (12 workers) finished residual (4 stages) and 11, 9 and 4 of the other files' quantizers in 540 s; an
# --append call finished them, except vector-quantize-pytorch's 4-head VectorQuantize at K >= 8192, which ran out
# of the GPU's memory while 11 other workers held it. Copy results off while the runs go (a loop taring
# benchmarks/results into $OUT every few seconds), e.g. on a lent machine:
#     SUITE_TIMEOUT=480 bash benchmarks/gpu_suite.sh k8192; tar czf "$OUT/results.tgz" benchmarks/results
set -u
cd "$(dirname "$0")/.."
mkdir -p outputs/gpu_suite
PY=${PYTHON:-python}
T=${SUITE_TIMEOUT:-540}
J=${SUITE_JOBS:-6}
R=benchmarks/results
SEEDS="--seeds 0 1 2 --device cuda"
# the leading rows at K = 1024 (RESULTS.md), most important first: a stopped benchmark keeps the rows it finished
LEADERS="mmquant_optvq_4heads_ema_kmeans_dead vqp_ema_kmeans_dead mmquant_optvq_4heads mmquant_optvq_4heads_dead
vqp_ema_kmeans_dead_rotation vqp_fsq vqp_lfq"
OPTVQ="mmquant_optvq_4heads mmquant_optvq_4heads_dead"

bench() {  # bench NAME SCRIPT ARGS...: one benchmark, its log, its exit status
    local name=$1 script=$2
    shift 2
    timeout "$T" "$PY" "benchmarks/$script" "$@" >"outputs/gpu_suite/$name.log" 2>&1
    echo "$name: exit status $?"
}

case "${1:-}" in
k1024)
    bench k1024 bench_tokenizer_quality.py $SEEDS --jobs $J --output $R/bench_tokenizer_quality_k1024.json
    ;;
k8192 | k16384)
    k=${1#k}
    bench "k$k" bench_tokenizer_quality.py $SEEDS --jobs $J --codebook_size "$k" --usage_every 50 \
        --output "$R/bench_tokenizer_quality_k$k.json"
    ;;
long)
    for k in 8192 16384; do
        bench "k${k}_2000" bench_tokenizer_quality.py $SEEDS --jobs $J --codebook_size $k --steps 2000 \
            --usage_every 200 --only $LEADERS --output "$R/bench_tokenizer_quality_k${k}_2000steps.json" &
    done
    wait
    ;;
residual)
    for stages in 4 8; do
        bench "residual$stages" bench_residual_quality.py $SEEDS --jobs $J --num_stages $stages --usage_every 100 \
            --output "$R/bench_residual_quality_${stages}stages.json" &
    done
    wait
    ;;
sweep)  # the Sinkhorn's epsilon and iterations at the largest codebook
    for option in "--optvq_epsilon 3" "--optvq_epsilon 30" "--optvq_n_iters 20"; do
        set -- $option
        tag=${1#--optvq_}
        tag=${tag/epsilon/eps}
        tag=${tag/n_iters/iters}$2
        bench "k16384_$tag" bench_tokenizer_quality.py $SEEDS --jobs ${SUITE_JOBS:-4} --codebook_size 16384 $option \
            --only $OPTVQ --output "$R/bench_tokenizer_quality_k16384_$tag.json" &
    done
    wait
    ;;
*)
    echo "usage: bash benchmarks/gpu_suite.sh {k1024|k8192|k16384|long|residual|sweep}" >&2
    exit 2
    ;;
esac
