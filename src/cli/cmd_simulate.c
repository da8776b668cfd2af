/* cmd_simulate.c - `blackhole simulate`: Monte Carlo batches from a study
 * spec's data-generating process (simulate.h): power, parameter recovery,
 * model comparison; threads, resume, shards and merge.  The MPI driver
 * (src/mpi/) reuses the parsing and the report below. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blackhole/simulate.h"
#include "blackhole/study.h"
#include "cli.h"

static const bh_cli_option simulate_options[] = {
    {"study", 0, 1, "FILE", "study spec (INI) with [dgp] sections (required unless --merge)"},
    {"out", 0, 1, "DIR", "output directory (required)"},
    {"reps", 0, 1, "R", "replications per design point (default 200)"},
    {"n", 0, 1, "N,...", "sample sizes in units (default: the spec's [dgp] n)"},
    {"scale-effects", 0, 1, "F,...", "effect scales: multiply every assumed effect (default 1)"},
    {"models", 0, 1, "A,...", "models of the spec to fit (default: those of its findings)"},
    {"threads", 0, 1, "T", "worker threads (default: all online CPUs)"},
    {"seed", 0, 1, "S", "unsigned 64-bit seed (default: the spec's [study] seed)"},
    {"truth-n", 0, 1, "N", "units of the pseudo-truth data set (default 100000)"},
    {"alpha", 0, 1, "A", "test level for power (default 0.05)"},
    {"resume", 0, 0, NULL, "keep the complete replications in DIR and run the rest"},
    {"shard", 0, 1, "i/K", "run only replications w with w % K == i-1 (merge later)"},
    {"merge", 0, 1, "DIR", "merge shard directories (DIR and further arguments) into --out"},
    {"quiet", 'q', 0, NULL, "no progress and no table"},
};
#define NOPT (sizeof simulate_options / sizeof simulate_options[0])

static void simulate_help(void)
{
    printf("usage: blackhole simulate --study SPEC --out DIR [--reps R] [--n N,...]\n"
           "           [--scale-effects F,...] [--models A,...] [--threads T] [--seed S]\n"
           "           [--truth-n N] [--alpha A] [--resume] [--shard i/K]\n"
           "       blackhole simulate --merge DIR1 DIR2 ... --out DIR\n\n"
           "Monte Carlo replications of the study's data-generating process.  Each\n"
           "replication generates data at sample size n with an effect scale, fits the\n"
           "chosen models and records every coefficient (DIR/replications.csv, appended\n"
           "as replications finish).  Summaries per (n, scale, model, term): bias,\n"
           "empirical SD, mean SE, RMSE, 95%% CI coverage, power (p < alpha with the\n"
           "published sign for finding terms), with Monte Carlo SEs: DIR/summary.csv,\n"
           "DIR/power.csv and DIR/sampling.csv (inputs of `blackhole plot sim`).\n"
           "True values are pseudo-true: the same model's estimates on one data set of\n"
           "--truth-n units (DIR/truth.csv).  Results are identical for any thread count,\n"
           "shard split or MPI rank count.  Ctrl-C stops after the running replications;\n"
           "--resume continues.\n\nOptions:\n");
    bh_cli_print_options(simulate_options, NOPT);
    printf("\nExit codes: 0 success, 1 interrupted (rerun with --resume), 2 usage or spec\n"
           "error, 3 input error, 4 output error.\n");
}

static bh_status parse_u64(const char *name, const char *s, uint64_t *out, bh_error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno == ERANGE || s[0] == '-')
        return bh_error_set(err, BH_EUSAGE,
                            "--%s must be an unsigned 64-bit integer, not '%s'", name, s);
    *out = (uint64_t)v;
    return BH_OK;
}

static bh_status parse_count(const char *name, const char *s, size_t lo, size_t hi, size_t *out,
                             bh_error *err)
{
    uint64_t v;
    if (parse_u64(name, s, &v, err) != BH_OK || v < lo || v > hi)
        return bh_error_set(err, BH_EUSAGE, "--%s must be a whole number in [%zu, %zu], not '%s'",
                            name, lo, hi, s);
    *out = (size_t)v;
    return BH_OK;
}

void bh_cli_sim_free(bh_cli_sim *c)
{
    free(c->n);
    free(c->scales);
    bh_cli_free_list(c->models, c->nmodels);
    free(c->merge);
    bh_cli_args_free(&c->args);
    memset(c, 0, sizeof *c);
}

bh_status bh_cli_sim_parse(int argc, char **argv, bh_cli_sim *c, int *help, bh_error *err)
{
    memset(c, 0, sizeof *c);
    bh_simulate_default_options(&c->opt);
    bh_status s = bh_cli_parse(argc, argv, simulate_options, NOPT, &c->args, help, err);
    if (s != BH_OK || *help)
        return s;
    bh_cli_args *a = &c->args;
    c->out = bh_cli_get(a, "out");
    c->study = bh_cli_get(a, "study");
    c->quiet = bh_cli_flag(a, "quiet");
    size_t nm = 0;
    char **mv = bh_cli_all(a, "merge", &nm);
    if (nm) {
        c->nmerge = nm + a->npos;
        if (!(c->merge = malloc(c->nmerge * sizeof *c->merge)))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        for (size_t k = 0; k < nm; k++)
            c->merge[k] = mv[k];
        for (size_t k = 0; k < a->npos; k++)
            c->merge[nm + k] = a->pos[k];
        if (!c->out)
            return bh_error_set(err, BH_EUSAGE, "--merge DIR... needs --out DIR");
        return BH_OK;
    }
    if (a->npos)
        return bh_error_set(err, BH_EUSAGE, "unexpected argument '%s' (see --help)", a->pos[0]);
    if (!c->study || !c->out)
        return bh_error_set(err, BH_EUSAGE, "--study SPEC and --out DIR are required");
    bh_simulate_options *o = &c->opt;
    const char *v;
    if ((v = bh_cli_get(a, "seed"))) {
        if ((s = parse_u64("seed", v, &o->seed, err)) != BH_OK)
            return s;
        o->seed_set = 1;
    }
    if ((v = bh_cli_get(a, "reps")) && (s = parse_count("reps", v, 1, 100000000, &o->reps, err)))
        return s;
    if ((v = bh_cli_get(a, "threads")) &&
        (s = parse_count("threads", v, 1, 256, &o->threads, err)))
        return s;
    if ((v = bh_cli_get(a, "truth-n")) &&
        (s = parse_count("truth-n", v, 2, 100000000, &o->truth_n, err)))
        return s;
    if ((v = bh_cli_get(a, "alpha")) &&
        (s = bh_cli_number("alpha", v, 1e-12, 0.999999, &o->alpha, err)))
        return s;
    o->resume = bh_cli_flag(a, "resume");
    if ((v = bh_cli_get(a, "shard"))) {
        unsigned long i = 0, k = 0;
        char tail;
        if (sscanf(v, "%lu/%lu%c", &i, &k, &tail) != 2 || k < 1 || i < 1 || i > k)
            return bh_error_set(err, BH_EUSAGE, "--shard must be i/K with 1 <= i <= K, not '%s'",
                                v);
        o->shard = i - 1;
        o->nshards = k;
    }
    if ((v = bh_cli_get(a, "n"))) {
        char **items = bh_cli_split(v, ',', &c->nn);
        if (!items || !(c->n = malloc(c->nn * sizeof *c->n))) {
            bh_cli_free_list(items, c->nn);
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        for (size_t k = 0; k < c->nn && s == BH_OK; k++)
            s = parse_count("n", items[k], 2, 100000000, &c->n[k], err);
        bh_cli_free_list(items, c->nn);
        if (s != BH_OK)
            return s;
        o->n = c->n;
        o->nn = c->nn;
    }
    if ((v = bh_cli_get(a, "scale-effects"))) {
        char **items = bh_cli_split(v, ',', &c->nscales);
        if (!items || !(c->scales = malloc(c->nscales * sizeof *c->scales))) {
            bh_cli_free_list(items, c->nscales);
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        }
        for (size_t k = 0; k < c->nscales && s == BH_OK; k++)
            s = bh_cli_number("scale-effects", items[k], -1e6, 1e6, &c->scales[k], err);
        bh_cli_free_list(items, c->nscales);
        if (s != BH_OK)
            return s;
        o->scales = c->scales;
        o->nscales = c->nscales;
    }
    if ((v = bh_cli_get(a, "models"))) {
        if (!(c->models = bh_cli_split(v, ',', &c->nmodels)))
            return bh_error_set(err, BH_ENOMEM, "out of memory");
        o->models = (const char *const *)c->models;
        o->nmodels = c->nmodels;
    }
    /* Test hook: stop after k new replications as if interrupted. */
    const char *hook = getenv("BH_SIMULATE_STOP_AFTER");
    if (hook && *hook)
        o->stop_after = (size_t)strtoull(hook, NULL, 10);
    return BH_OK;
}

/* ---- progress ------------------------------------------------------------------- */

typedef struct {
    int tty;
    double t0;
    size_t done0, last_step;
    double last_print;
} progress_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(char *buf, size_t n, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, n, "--:--");
    else if (s < 3600)
        snprintf(buf, n, "%02d:%02d", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, n, "%dh%02d", (int)(s / 3600), ((int)s % 3600) / 60);
}

static void show_progress(void *ctx, size_t done, size_t total)
{
    progress_state *ps = ctx;
    double t = now_s();
    if (ps->t0 == 0) {
        ps->t0 = t;
        ps->done0 = done;
        ps->last_print = -1;
    }
    double el = t - ps->t0, rate = el > 0 ? (double)(done - ps->done0) / el : 0;
    double eta = rate > 0 ? (double)(total - done) / rate : NAN;
    char es[32], ets[32];
    fmt_time(es, sizeof es, el);
    fmt_time(ets, sizeof ets, eta);
    if (ps->tty) {
        if (done < total && t - ps->last_print < 0.1)
            return;
        ps->last_print = t;
        int width = 30, fill = total ? (int)((double)width * (double)done / (double)total) : width;
        fprintf(stderr, "\r[%.*s%*s] %zu/%zu  %.1f rep/s  elapsed %s  ETA %s ", fill,
                "##############################", width - fill, "", done, total, rate, es, ets);
        if (done == total)
            fputc('\n', stderr);
    } else {
        /* plain lines: every 10% */
        size_t step = total ? done * 10 / total : 10;
        if (step == ps->last_step)
            return;
        ps->last_step = step;
        fprintf(stderr, "simulate: %zu/%zu replications, %.1f per second, elapsed %s, ETA %s\n",
                done, total, rate, es, ets);
    }
    fflush(stderr);
}

/* ---- report ------------------------------------------------------------------------ */

static void pnum(double v, int prec, int width)
{
    if (isnan(v))
        printf(" %*s", width, "NA");
    else
        printf(" %*.*f", width, prec, v);
}

/* "center(a):center(b)" -> "a:b" for the table (the files keep the
 * coefficient names). */
static void plain_term(const char *in, char *out, size_t size)
{
    size_t o = 0;
    while (*in && o + 1 < size) {
        const char *wrap = strncmp(in, "center(", 7) == 0 ? "center(" :
                           strncmp(in, "scale(", 6) == 0 ? "scale(" : NULL;
        const char *end = wrap ? strchr(in, ')') : NULL;
        if (wrap && end) {
            const char *v = in + strlen(wrap);
            while (v < end && o + 1 < size)
                out[o++] = *v++;
            in = end + 1;
        } else
            out[o++] = *in++;
    }
    out[o] = '\0';
}

void bh_cli_sim_report(const bh_simulate_result *r, const char *out_dir)
{
    if (r->nrows) {
        printf("%6s %6s  %-16s %-7s %-42s %-4s %9s %9s %8s %8s %6s %13s %5s\n", "n", "scale",
               "model", "finding", "term", "sign", "true", "bias", "emp_sd", "mean_se", "cover", "power (MC se)",
               "fail");
        for (size_t k = 0; k < r->nrows; k++) {
            const bh_simulate_row *w = &r->rows[k];
            if (!w->key)
                continue;
            char term[600], plain[256];
            plain_term(w->term, plain, sizeof plain);
            if (*w->component)
                snprintf(term, sizeof term, "%s/%s", w->component, plain);
            else
                snprintf(term, sizeof term, "%s", plain);
            printf("%6zu %6.3g  %-16.16s %-7.7s %-42.42s %-4s", w->n, w->effect_scale, w->model,
                   w->finding, term, w->sign > 0 ? "+" : w->sign < 0 ? "-" : "");
            pnum(w->truth, 4, 9);
            pnum(w->bias, 4, 9);
            pnum(w->emp_sd, 4, 8);
            pnum(w->mean_se, 4, 8);
            pnum(w->coverage, 3, 6);
            printf(" %6.3f (%.3f)", w->power, w->power_se);
            printf(" %5zu\n", w->failed);
        }
        printf("power: share of successful fits with p < %g (and the published sign for finding\n"
               "terms); true = pseudo-true value (truth.csv); all terms in %s/summary.csv\n",
               r->alpha, out_dir);
    }
}

/* OpenBLAS (linked by the Makefile) would start its own threads inside each
 * worker's fits; the workers already use the cores. */
void openblas_set_num_threads(int n);

static volatile sig_atomic_t *stop_flag_slot(void)
{
    /* The one piece of process state: a signal handler can reach nothing
     * else, so the stop flag must live at file scope. */
    static volatile sig_atomic_t flag;
    return &flag;
}

static void on_signal(int sig)
{
    (void)sig;
    *stop_flag_slot() = 1;
}

int bh_cmd_simulate(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_sim c;
    int help = 0, rc = BH_EXIT_OK;
    bh_study *study = NULL;
    bh_simulate_result *res = NULL;
    bh_status s = bh_cli_sim_parse(argc, argv, &c, &help, &err);
    if (s == BH_OK && help) {
        simulate_help();
        bh_cli_sim_free(&c);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    if (c.merge) {
        if ((s = bh_simulate_merge((const char *const *)c.merge, c.nmerge, c.out, &res, &err)) !=
            BH_OK)
            goto fail;
        printf("blackhole simulate: merged %zu directories into %s (%zu replications)\n",
               c.nmerge, c.out, res->done);
        if (!c.quiet)
            bh_cli_sim_report(res, c.out);
        goto done;
    }
    if ((s = bh_study_read(c.study, &study, &err)) != BH_OK)
        goto fail;
    progress_state ps;
    memset(&ps, 0, sizeof ps);
    ps.tty = isatty(2);
    ps.last_step = (size_t)-1;
    if (!c.quiet) {
        c.opt.progress = show_progress;
        c.opt.progress_ctx = &ps;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    c.opt.stop = stop_flag_slot();
    openblas_set_num_threads(1);
    if (!c.quiet)
        fprintf(stderr, "simulate: computing pseudo-true values (%zu units per effect scale "
                        "and model)\n", c.opt.truth_n);
    s = bh_simulate_run(study, c.study, &c.opt, c.out, &res, &err);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (s != BH_OK)
        goto fail;
    printf("blackhole simulate: study %s, seed %llu, %zu of %zu replications complete "
           "(%zu run now in %.1f s, %.2f per second, %zu failed model fits)\n",
           study->name, (unsigned long long)(c.opt.seed_set ? c.opt.seed : study->seed),
           res->done, res->total, res->ran, res->seconds,
           res->seconds > 0 ? (double)res->ran / res->seconds : 0.0, res->failed_models);
    if (!res->complete) {
        fprintf(stderr, "blackhole simulate: stopped with %zu of %zu replications written to "
                        "%s/replications.csv; rerun with --resume to continue\n",
                res->done, res->total, c.out);
        rc = BH_EXIT_ESTIMATION;
        goto done;
    }
    if (c.opt.nshards > 1) {
        printf("shard %zu/%zu complete; merge the shard directories with --merge\n",
               c.opt.shard + 1, c.opt.nshards);
        goto done;
    }
    if (!c.quiet)
        bh_cli_sim_report(res, c.out);
    goto done;
fail:
    rc = bh_cli_fail("simulate", &err);
done:
    bh_simulate_result_free(res);
    bh_study_free(study);
    bh_cli_sim_free(&c);
    return rc;
}
