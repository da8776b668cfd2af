/* vmath_bench.c - ns per element of bh_vm_exp_negabs / bh_vm_log1p_unit
 * against glibc's scalar exp(-fabs(x)) / log1p, on 1024-element arrays
 * (the GLM's chunk size) reused many times, so the data stay in L1 and
 * the arithmetic is what is timed.  Not part of the test suite.
 *
 * Build and run from the repository root with the project's flags:
 *   gcc -std=c11 -Wall -Wextra -O2 -g -D_POSIX_C_SOURCE=200809L -Iinclude \
 *       bench/vmath_bench.c src/vmath.c -lm -o /tmp/vmath_bench
 *   /tmp/vmath_bench [reps]      (default 20000 passes over 1024 elements)
 * eta is spread over [-30, 30] like logit linear predictors; e over the
 * resulting (0, 1].  Prints the best of 5 timings for glibc and for each
 * vmath path this CPU runs (the default, bh_vm_exp_negabs, takes the
 * last one listed).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "blackhole/vmath.h"

#define N 1024

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Keeps the compiler from discarding results. */
static volatile double sink;

static double run(int which, bh_vm_path path, long reps, const double *x,
                  const double *e, double *out)
{
    double best = INFINITY;
    for (int t = 0; t < 5; t++) {
        double t0 = now(), acc = 0;
        for (long r = 0; r < reps; r++) {
            switch (which) {
            case 0:
                for (size_t i = 0; i < N; i++)
                    out[i] = exp(-fabs(x[i]));
                break;
            case 1:
                bh_vm_exp_negabs_on(path, N, x, out);
                break;
            case 2:
                for (size_t i = 0; i < N; i++)
                    out[i] = log1p(e[i]);
                break;
            default:
                bh_vm_log1p_unit_on(path, N, e, out);
                break;
            }
            acc += out[r % N];
        }
        sink = acc;
        double dt = (now() - t0) / ((double)reps * N) * 1e9;
        if (dt < best)
            best = dt;
    }
    return best;
}

int main(int argc, char **argv)
{
    long reps = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    if (reps < 1)
        reps = 1;
    static double x[N], e[N], out[N];
    unsigned long long s = 42;
    for (size_t i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = ((double)(s >> 11) / 9007199254740992.0 - 0.5) * 60;
        e[i] = exp(-fabs(x[i]));
    }
    double g_exp = run(0, BH_VM_AUTO, reps, x, e, out);
    double g_log = run(2, BH_VM_AUTO, reps, x, e, out);
    printf("glibc            exp(-|x|) %6.2f ns/elt   log1p(e) %6.2f ns/elt\n",
           g_exp, g_log);
    bh_vm_path best = bh_vm_best_path();
    for (int p = BH_VM_GENERIC; p <= (int)best; p++) {
        double te = run(1, (bh_vm_path)p, reps, x, e, out);
        double tl = run(3, (bh_vm_path)p, reps, x, e, out);
        printf("vmath %-10s exp(-|x|) %6.2f ns/elt (x%.1f)  log1p(e) %6.2f "
               "ns/elt (x%.1f)\n",
               bh_vm_path_name((bh_vm_path)p), te, g_exp / te, tl, g_log / tl);
    }
    return 0;
}
