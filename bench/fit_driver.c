/* fit_driver.c - in-memory timing of the library for bench/run.sh.
 *
 * Usage: fit_driver logit|ols FILE FORMULA VCOV COEF_OUT
 *        fit_driver stream
 *
 * Reads FILE once, then times each stage separately with a monotonic clock:
 * read (bh_csv_read_path), design (bh_formula_parse + bh_design_build),
 * the fit (logit: bh_glm_init and each bh_glm_iterate, then bh_glm_result,
 * which adds the final QR, leverages, null model and fit statistics; ols:
 * bh_lm_fit) and vcov (bh_vcov_compute + bh_fit_summarize).  Prints
 * "key value" lines on stdout and writes term,estimate,std_error to
 * COEF_OUT so run.sh can check that the tools agree.
 *
 * "stream" measures memory bandwidth on this machine the way STREAM does
 * (triad a = b + s c over arrays far larger than the caches, 24 bytes
 * counted per element, best of several passes, one thread) and a read-only
 * pass (a dot product: 16 bytes per element), the bound an IRLS iteration,
 * which mostly reads X, should be compared with. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gsl/gsl_errno.h>

#include "blackhole/csvread.h"
#include "blackhole/design.h"
#include "blackhole/formula.h"
#include "blackhole/glm.h"
#include "blackhole/lm.h"
#include "blackhole/vcov.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One thread's slice of the triad (and of the read-only test). */
typedef struct {
    double *a;
    const double *b, *c;
    size_t n;
    double sum;
    int read;
} slice;

static void *slice_run(void *arg)
{
    slice *s = arg;
    if (!s->read) {
        for (size_t i = 0; i < s->n; i++)
            s->a[i] = s->b[i] + 3.0 * s->c[i];
        return NULL;
    }
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (size_t i = 0; i + 3 < s->n; i += 4) {
        s0 += s->b[i] * s->c[i];
        s1 += s->b[i + 1] * s->c[i + 1];
        s2 += s->b[i + 2] * s->c[i + 2];
        s3 += s->b[i + 3] * s->c[i + 3];
    }
    s->sum = s0 + s1 + s2 + s3;
    return NULL;
}

/* Seconds for the triad (read = 0) or the dot product over n elements
 * split into T contiguous slices, one thread each. */
static double run_slices(double *a, const double *b, const double *c,
                         size_t n, int T, int read, double *sink)
{
    slice s[64];
    pthread_t th[64];
    size_t per = n / (size_t)T;
    for (int t = 0; t < T; t++)
        s[t] = (slice){a + t * per, b + t * per, c + t * per,
                       t == T - 1 ? n - t * per : per, 0, read};
    double t0 = now();
    for (int t = 1; t < T; t++)
        pthread_create(&th[t], NULL, slice_run, &s[t]);
    slice_run(&s[0]);
    for (int t = 1; t < T; t++)
        pthread_join(th[t], NULL);
    double dt = now() - t0;
    for (int t = 0; t < T; t++)
        *sink += s[t].sum;
    return dt;
}

static int stream(void)
{
    /* 3 x 160 MB: far beyond any last-level cache (n a multiple of 4). */
    size_t n = 20u * 1000 * 1000;
    double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b),
           *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        fprintf(stderr, "fit_driver: out of memory for the stream test\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        a[i] = 0;
        b[i] = 1.0 + (double)(i % 7);
        c[i] = 2.0 - (double)(i % 5);
    }
    double best_triad = INFINITY, best_read = INFINITY, sink = 0;
    for (int rep = 0; rep < 6; rep++) {
        double t0 = now();
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + 3.0 * c[i];
        double t1 = now();
        /* Four partial sums: a single one would be a latency-bound
         * dependency chain rather than a bandwidth test. */
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t i = 0; i + 3 < n; i += 4) {
            s0 += b[i] * c[i];
            s1 += b[i + 1] * c[i + 1];
            s2 += b[i + 2] * c[i + 2];
            s3 += b[i + 3] * c[i + 3];
        }
        double s = s0 + s1 + s2 + s3;
        double t2 = now();
        sink += s + a[rep];
        if (rep > 0) { /* the first pass faults the pages in */
            best_triad = fmin(best_triad, t1 - t0);
            best_read = fmin(best_read, t2 - t1);
        }
    }
    printf("triad_gbs %.3f\n", 24.0 * (double)n / best_triad / 1e9);
    printf("read_gbs %.3f\n", 16.0 * (double)n / best_read / 1e9);
    /* The same on every online CPU (the GLM's passes use them all). */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int T = cpus < 1 ? 1 : cpus > 64 ? 64 : (int)cpus;
    double bt = INFINITY, br = INFINITY;
    for (int rep = 0; rep < 6; rep++) {
        bt = fmin(bt, run_slices(a, b, c, n, T, 0, &sink));
        br = fmin(br, run_slices(a, b, c, n, T, 1, &sink));
    }
    printf("threads %d\n", T);
    printf("triad_all_gbs %.3f\n", 24.0 * (double)n / bt / 1e9);
    printf("read_all_gbs %.3f\n", 16.0 * (double)n / br / 1e9);
    fprintf(stderr, "(checksum %g)\n", sink);
    free(a);
    free(b);
    free(c);
    return 0;
}

static int fail(const char *what, const bh_error *err)
{
    fprintf(stderr, "fit_driver: %s: %s\n", what, err->msg);
    return 1;
}

/* OpenBLAS's own API (the BLAS under GSL). */
void openblas_set_num_threads(int n);

int main(int argc, char **argv)
{
    /* the library's BLAS policy, as in the CLI: one thread unless asked */
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    if (argc == 2 && !strcmp(argv[1], "stream"))
        return stream();
    if (argc != 6 || (strcmp(argv[1], "logit") && strcmp(argv[1], "ols"))) {
        fprintf(stderr, "usage: %s logit|ols FILE FORMULA VCOV COEF_OUT\n"
                        "       %s stream\n", argv[0], argv[0]);
        return 2;
    }
    int logit = !strcmp(argv[1], "logit");
    gsl_set_error_handler_off();
    bh_error err;
    bh_error_clear(&err);

    bh_vcov_spec spec;
    if (bh_vcov_parse(argv[4], &spec, &err))
        return fail("vcov", &err);

    double t0 = now();
    bh_csv_options copt;
    bh_csv_default_options(&copt);
    bh_frame *frame = NULL;
    if (bh_csv_read_path(argv[2], &copt, &frame, &err))
        return fail("read", &err);
    double t1 = now();

    bh_formula *f = NULL;
    if (bh_formula_parse(argv[3], &f, &err))
        return fail("formula", &err);
    bh_design_options dopt;
    bh_design_default_options(&dopt);
    if (spec.kind == BH_VCOV_CLUSTER)
        dopt.cluster = spec.cluster;
    bh_design *d = NULL;
    if (bh_design_build(f, frame, &dopt, &d, &err))
        return fail("design", &err);
    double t2 = now();

    bh_fit *fit = NULL;
    size_t iters = 0;
    double t_init = 0, t_result = 0, t_fit;
    double *it_times = NULL;
    if (logit) {
        bh_glm_options gopt;
        bh_glm_default_options(&gopt);
        gopt.family = BH_FAM_BINOMIAL;
        gopt.link = BH_LINK_LOGIT;
        /* BH_GLM_THREADS: the GLM's row-pass threads (default: all CPUs). */
        if (getenv("BH_GLM_THREADS"))
            gopt.threads = (size_t)strtoul(getenv("BH_GLM_THREADS"), NULL, 10);
        it_times = malloc(gopt.maxiter * sizeof *it_times);
        bh_glm_workspace *ws = bh_glm_workspace_alloc(d->n, d->p);
        if (!ws || !it_times) {
            fprintf(stderr, "fit_driver: out of memory\n");
            return 1;
        }
        double a = now();
        if (bh_glm_init(ws, d, &gopt, &err))
            return fail("glm init", &err);
        double b = now();
        t_init = b - a;
        int conv = 0;
        while (iters < gopt.maxiter && !conv) {
            double c = now();
            if (bh_glm_iterate(ws, &err))
                return fail("glm iterate", &err);
            it_times[iters++] = now() - c;
            conv = bh_glm_test(ws);
        }
        double e = now();
        if (bh_glm_result(ws, &fit, &err))
            return fail("glm result", &err);
        t_result = now() - e;
        t_fit = e - a;
        bh_glm_workspace_free(ws);
        if (!conv)
            fprintf(stderr, "fit_driver: IRLS did not converge\n");
    } else {
        bh_lm_options lopt;
        bh_lm_default_options(&lopt);
        double a = now();
        if (bh_lm_fit(d, &lopt, NULL, &fit, &err))
            return fail("lm", &err);
        t_fit = now() - a;
    }
    double t3 = now();
    if (bh_vcov_compute(fit, &spec, &err) ||
        bh_fit_summarize(fit, 0.95, &err))
        return fail("vcov", &err);
    double t4 = now();

    printf("n %zu\np %zu\n", d->n, d->p);
    printf("t_read %.6f\nt_design %.6f\nt_fit %.6f\nt_vcov %.6f\n",
           t1 - t0, t2 - t1, t_fit, t4 - t3);
    if (logit) {
        /* The median iteration: the first one (from the starting values)
         * and the last (converged) cost the same as the others, but a
         * median is robust to a stray page fault. */
        double med = 0, sum = 0;
        for (size_t k = 0; k < iters; k++)
            sum += it_times[k];
        if (iters) {
            qsort(it_times, iters, sizeof *it_times, cmp_double);
            med = it_times[iters / 2];
        }
        printf("t_irls_init %.6f\nt_irls_iter_total %.6f\niters %zu\n"
               "t_iter_median %.6f\nt_result %.6f\n",
               t_init, sum, iters, med, t_result);
    }
    FILE *out = fopen(argv[5], "w");
    if (!out) {
        perror(argv[5]);
        return 1;
    }
    fprintf(out, "term,estimate,std_error\n");
    for (size_t j = 0; j < fit->p; j++)
        fprintf(out, "%s,%.17g,%.17g\n", fit->term[j], fit->beta[j],
                fit->se[j]);
    if (fclose(out)) {
        perror(argv[5]);
        return 1;
    }
    free(it_times);
    bh_fit_free(fit);
    bh_design_free(d);
    bh_formula_free(f);
    bh_frame_free(frame);
    return 0;
}
