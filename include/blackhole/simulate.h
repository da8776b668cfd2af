/* simulate.h - Monte Carlo batches from a study spec's data-generating
 * process: power, parameter recovery and model comparison.
 *
 * Design.  A batch crosses sample sizes n (units) with effect scales
 * (generate.h: multipliers of every assumed effect); each (n, scale) pair
 * is a design point d = in * nscales + is, and every design point gets
 * `reps` replications.  Work item w = d * reps + i (i = 0..reps-1) is one
 * replication: generate a data set at n with the scale, fit every chosen
 * model, record each coefficient's estimate, SE, CI, p-value, convergence
 * and warning count.
 *
 * Randomness.  Replication i uses the stream (seed, i) (rng.h) at every
 * design point: common random numbers across n and effect scale, so power
 * curves are smooth and differences between design points are not blurred
 * by independent noise.  A data set is a pure function of (seed, i, n,
 * scale), so results do not depend on the thread count, the MPI rank
 * count, the shard split or the order in which replications finish.
 *
 * True values.  A model's coefficients are not the DGP's numbers (the DGP
 * uses standardised predictors, the models centred raw variables, and a
 * misspecified model has its own limit), so bias and coverage use
 * pseudo-true values: the estimates of the same model on one very large
 * data set (truth_n units, default 100,000) generated with the same effect
 * scale from the reserved stream (seed, 2^63).  They are computed once per
 * (effect scale, model) and written to truth.csv.  Their own sampling
 * error is about SE(n) * sqrt(n / truth_n), small next to the replications'.
 *
 * Power.  The rejection rate at level alpha (default 0.05): for a term
 * that carries a published finding with a sign (study.h [finding]), a
 * rejection is p < alpha with the expected sign; for other terms p < alpha.
 * A finding applies to every chosen model on the same data level whose
 * responses include the finding's response (its component, or its model's
 * response), so e.g. F1 is also scored on the fractional model of
 * share_marketing.  Rates are over the successful fits; failed fits
 * (errors, non-convergence) are counted separately.
 *
 * Files in the output directory DIR:
 *   simulate.cfg      the design (seed, reps, n, scales, models, ...);
 *                     --resume and --merge refuse a different design
 *   truth.csv         effect_scale,model,component,term,true,finding,sign
 *   replications.csv  one block per replication, appended (whole lines,
 *                     flushed, under a mutex) as each finishes: one line
 *                     per coefficient (or one error line per failed model)
 *                     then an end line whose `iterations` field holds the
 *                     block's line count; sorted by w when a run completes
 *   summary.csv       per (n, scale, model, component, term): mean
 *                     estimate, bias, relative bias, empirical SD, mean
 *                     SE, RMSE, 95% CI coverage and its Monte Carlo SE,
 *                     power and its Monte Carlo SE, successful and failed
 *                     fits
 *   power.csv         BH_PLOT_SIM_POWER_COLUMNS (plot.h), key terms
 *   sampling.csv      BH_PLOT_SIM_SAMPLING_COLUMNS, key terms
 * Key terms: the finding terms of a model, or all its terms when it has
 * none.  In power.csv and sampling.csv the term of a multi-component
 * model is "component/term"; with several effect scales sampling.csv's
 * model is "model @ scale S" (the contract has no scale column).
 * Summaries are computed from replications.csv sorted by w, so a resumed,
 * sharded-and-merged or MPI run gives the same bytes as one run.
 *
 * Workers.  A worker keeps everything a replication needs between
 * replications: the generator's buffers and the frames it refills (a
 * unit-level frame of the same n is overwritten in place), per model the
 * parsed formula, the design's buffers and the GLM workspace
 * (bh_model_fit_ws), and the text buffers of the block.  The threaded
 * driver computes the pseudo-true values as the first work items of its
 * pool, so the other workers start on the replications meanwhile;
 * truth.csv is written (atomically) when the last of them is done, and a
 * run stopped before that computes them on --resume.
 *
 * Ownership: a plan borrows the study (which must outlive it); results
 * are the caller's (bh_simulate_result_free).  Workers are not shared
 * between threads.  The library never prints: progress goes through a
 * callback.
 */
#ifndef BH_SIMULATE_H
#define BH_SIMULATE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "blackhole/status.h"
#include "blackhole/study.h"

/* The stream index of the pseudo-truth data set (far from replications). */
#define BH_SIMULATE_TRUTH_INDEX (UINT64_C(1) << 63)

/* Progress: done of total replications (previous runs' included). */
typedef void (*bh_simulate_progress_fn)(void *ctx, size_t done, size_t total);

typedef struct {
    uint64_t seed;              /* default: the spec's [study] seed           */
    int seed_set;
    size_t reps;                /* replications per design point (200)        */
    const size_t *n;            /* sample sizes; NULL = the spec's [dgp] n    */
    size_t nn;
    const double *scales;       /* effect scales; NULL = {1}                  */
    size_t nscales;
    const char *const *models;  /* model names; NULL = the findings' models   */
    size_t nmodels;
    size_t threads;             /* worker threads; 0 = all online CPUs        */
    size_t shard, nshards;      /* run w with w % nshards == shard (0-based);
                                   nshards 0 or 1 = everything                */
    size_t truth_n;             /* units of the pseudo-truth data (100000)    */
    double alpha;               /* test level (0.05)                          */
    int resume;                 /* keep complete replications in DIR          */
    size_t stop_after;          /* test hook: stop after this many new
                                   replications (0 = never)                   */
    volatile sig_atomic_t *stop; /* set (e.g. by a signal handler) to stop
                                   after the in-flight replications; or NULL */
    bh_simulate_progress_fn progress;
    void *progress_ctx;
} bh_simulate_options;

void bh_simulate_default_options(bh_simulate_options *o);

/* One summary row. */
typedef struct {
    size_t n;
    double effect_scale;
    char *model, *component, *term;
    char *finding;              /* finding name, "" when none                */
    int sign;                   /* expected sign (+1, -1), 0 = none          */
    int key;                    /* a key term (power.csv, sampling.csv)      */
    double truth;               /* pseudo-true value (NAN when unknown)      */
    size_t reps, ok, failed;
    double mean, bias, rel_bias, emp_sd, mean_se, rmse;
    double coverage, coverage_se, power, power_se;
} bh_simulate_row;

typedef struct {
    size_t total;               /* replications of this run (shard)          */
    size_t done;                /* complete in DIR/replications.csv          */
    size_t ran;                 /* run now (not resumed)                     */
    size_t failed_models;       /* failed model fits among `ran`             */
    int complete;               /* done == total                             */
    double seconds;             /* wall time of the replications run now
                                   (with the pseudo-true values when they
                                   were computed alongside)                */
    bh_simulate_row *rows;      /* summary rows (when complete, not a shard) */
    size_t nrows;
    double alpha;
} bh_simulate_result;

void bh_simulate_result_free(bh_simulate_result *r);

/* ---- building blocks (the threaded driver and the MPI driver use them) ---- */

typedef struct bh_simulate_plan bh_simulate_plan;
typedef struct bh_simulate_worker bh_simulate_worker;

/* Validate options against the study and build the plan: design points,
 * model specs (with the spec's transforms, replicate.h), finding map.
 * BH_EUSAGE naming the option at fault (unknown model, n < 2, ...). */
bh_status bh_simulate_plan_new(const bh_study *s, const char *study_path,
                               const bh_simulate_options *o, bh_simulate_plan **out,
                               bh_error *err);
void bh_simulate_plan_free(bh_simulate_plan *p);
/* Work items of the whole batch (all shards): ndesign * reps. */
size_t bh_simulate_plan_size(const bh_simulate_plan *p);

bh_simulate_worker *bh_simulate_worker_alloc(const bh_simulate_plan *p);
void bh_simulate_worker_free(bh_simulate_worker *w);

/* Run work item w and return its replications.csv block (malloc'ed text,
 * whole lines, end line included) in *block.  Model failures are recorded
 * in the block, not returned; errors are BH_ENOMEM / BH_EINTERNAL.
 * *failed gets the number of failed model fits. */
bh_status bh_simulate_run_one(bh_simulate_worker *wk, size_t w, char **block,
                              size_t *failed, bh_error *err);

/* Prepare DIR: create it, write simulate.cfg and truth.csv (computing the
 * pseudo-true values), or with o->resume check the stored design and
 * truncate replications.csv after its last complete block.  *done (malloc'ed,
 * plan size flags) marks the complete work items. */
bh_status bh_simulate_prepare(bh_simulate_plan *p, const char *dir,
                              unsigned char **done, bh_error *err);

/* Finish DIR: sort replications.csv by w and, when every work item of
 * the batch is present, write summary.csv, power.csv and sampling.csv and
 * return the rows in *out (may be NULL).  Used after a run and by merge. */
bh_status bh_simulate_finish(const char *dir, bh_simulate_result **out, bh_error *err);

/* v as printf's "%.17g" writes it, NUL-ended, into buf (32 bytes);
 * returns the length.  replications.csv's number format, exposed for its
 * test against printf. */
size_t bh_simulate_fmt_g17(double v, char *buf);

/* ---- drivers ---- */

/* The threaded batch: prepare, run the pending items of this shard on
 * o->threads workers (one workspace each), append each block as it
 * finishes, stop cleanly on *o->stop, finish.  A stopped run returns BH_OK
 * with complete = 0 (rerun with resume). */
bh_status bh_simulate_run(const bh_study *s, const char *study_path,
                          const bh_simulate_options *o, const char *dir,
                          bh_simulate_result **out, bh_error *err);

/* Merge shard directories into `out_dir`: the designs must agree, work
 * items may not repeat (identical duplicates are tolerated), and the
 * union is written as one run would write it. */
bh_status bh_simulate_merge(const char *const *dirs, size_t ndirs, const char *out_dir,
                            bh_simulate_result **out, bh_error *err);

#endif
