#!/usr/bin/env bash
# The large-codebook and residual tokenizer benchmarks, three seeds each, on one CUDA GPU in about ten minutes:
#
#     bash benchmarks/gpu_suite.sh            # from the repository root; writes benchmarks/results/*.json
#     python benchmarks/render_results.py     # then renders them into benchmarks/RESULTS.md
#
# Every benchmark runs at once, each with a few worker processes (--jobs) sharing the GPU, so step times are
# measured under that sharing (each results file records its --jobs). Logs go to outputs/gpu_suite/. Each command
# is stopped after $SUITE_TIMEOUT seconds (default 540); a stopped benchmark's file keeps the quantizers it finished
# and names how many (settings.stopped_after).
set -u
cd "$(dirname "$0")/.."
mkdir -p outputs/gpu_suite
PY=${PYTHON:-python}
T=${SUITE_TIMEOUT:-540}
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

bench k1024 bench_tokenizer_quality.py $SEEDS --jobs 3 --output $R/bench_tokenizer_quality_k1024.json &
for k in 8192 16384; do
    bench "k$k" bench_tokenizer_quality.py $SEEDS --jobs 3 --codebook_size $k --usage_every 50 \
        --output $R/bench_tokenizer_quality_k$k.json &
    bench "k${k}_2000" bench_tokenizer_quality.py $SEEDS --jobs 3 --codebook_size $k --steps 2000 \
        --usage_every 200 --only $LEADERS --output $R/bench_tokenizer_quality_k${k}_2000steps.json &
done
for stages in 4 8; do
    bench "residual$stages" bench_residual_quality.py $SEEDS --jobs 2 --num_stages $stages --usage_every 100 \
        --output $R/bench_residual_quality_${stages}stages.json &
done
(  # the Sinkhorn's epsilon and iterations at the largest codebook
    bench k16384_eps3 bench_tokenizer_quality.py $SEEDS --jobs 2 --codebook_size 16384 --optvq_epsilon 3 \
        --only $OPTVQ --output $R/bench_tokenizer_quality_k16384_eps3.json
    bench k16384_eps30 bench_tokenizer_quality.py $SEEDS --jobs 2 --codebook_size 16384 --optvq_epsilon 30 \
        --only $OPTVQ --output $R/bench_tokenizer_quality_k16384_eps30.json
    bench k16384_iters20 bench_tokenizer_quality.py $SEEDS --jobs 2 --codebook_size 16384 --optvq_n_iters 20 \
        --only $OPTVQ --output $R/bench_tokenizer_quality_k16384_iters20.json
) &
wait
