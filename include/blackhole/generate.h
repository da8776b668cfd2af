/* generate.h - synthetic data from a study's data-generating process.
 *
 * The process is the [dgp ...] part of a study spec (study.h): nothing
 * about a particular study is compiled in.  A data set is a pure function
 * of (spec, seed, replication index, number of units, effect scale): all
 * draws come from the reproducible stream bh_rng_stream(seed, index)
 * (rng.h), in a fixed order (group assignment, then each DGP node in
 * generation order, then missing-value masks).  Frames are built in
 * memory; nothing touches files except bh_generate_write().
 *
 * Ownership: frames returned are the caller's (bh_frame_free).  A
 * workspace borrows the study (which must outlive it) and keeps its
 * buffers and generator between calls, so `simulate` can call
 * bh_generate_ws() thousands of times without re-allocating them.  A
 * workspace is not shared between threads (one per thread).
 */
#ifndef BH_GENERATE_H
#define BH_GENERATE_H

#include <stddef.h>
#include <stdint.h>
#include "blackhole/frame.h"
#include "blackhole/status.h"
#include "blackhole/study.h"

typedef struct {
    uint64_t seed;        /* default: the spec's [study] seed              */
    int seed_set;         /* 0 = use the spec's seed                        */
    uint64_t index;       /* replication index (stream (seed, index))       */
    size_t n_reps;        /* units; 0 = the spec's [dgp] n                  */
    double effect_scale;  /* multiplies every [dgp effects] term coefficient
                             (not intercepts or group shifts); default 1    */
    int keep_appended;    /* bh_generate_ws_reuse: a unit-level frame
                             refilled in place keeps the columns appended
                             after the generated ones; default 0 (dropped) */
} bh_generate_options;

void bh_generate_default_options(bh_generate_options *o);

typedef struct bh_generate_workspace bh_generate_workspace;

/* A workspace for study s; NULL when out of memory.  BH_EUSAGE-free: the
 * study was validated by bh_study_read. */
bh_generate_workspace *bh_generate_workspace_alloc(const bh_study *s);
void bh_generate_workspace_free(bh_generate_workspace *w);

/* Generate one data set.  *reps gets the unit-level frame; *leads the
 * event-level frame, or NULL when the spec has no leads level (leads may
 * be NULL to skip building it).  BH_EUSAGE when the spec has no [dgp] or
 * options are out of range (effect_scale not finite), BH_ENOMEM. */
bh_status bh_generate_ws(bh_generate_workspace *w, const bh_generate_options *o,
                         bh_frame **reps, bh_frame **leads, bh_error *err);

/* The same into frames of an earlier call: *reps (and *leads when leads
 * is not NULL) are NULL or frames that this function or bh_generate_ws
 * returned for the same study, possibly with columns renamed or appended
 * since.  A unit-level frame of the same number of units (and the same
 * groups present) is overwritten in place, without allocating: its
 * appended columns are dropped, renamed columns keep their new names.
 * The lead-level frame, whose row count is drawn, is refilled in place
 * whatever its rows: its columns keep memory for more rows and level
 * strings than they hold (bh_column.cap, levels_cap, level_room), grown
 * with room to spare when a data set is larger than any before, so that
 * in steady state nothing is allocated.  Other frames are freed and built
 * anew.  The data are those bh_generate_ws gives.  On error both frames
 * are freed and set to NULL.
 * With o->keep_appended, a frame refilled in place keeps its appended
 * columns, values untouched (stale: the caller's to overwrite, as
 * simulate does with the scale composites, without allocating; a
 * lead-level frame keeps numeric ones only, resized to its rows, new rows
 * missing); a frame built anew has none.  Columns at or past
 * bh_generate_ncol are the appended ones. */
bh_status bh_generate_ws_reuse(bh_generate_workspace *w, const bh_generate_options *o,
                               bh_frame **reps, bh_frame **leads, bh_error *err);

/* The number of columns the generator makes at a level (BH_LEVEL_REPS or
 * BH_LEVEL_LEADS) of study s, the first columns of each frame it returns;
 * 0 for the lead level of a spec without one, or without a [dgp]. */
size_t bh_generate_ncol(const bh_study *s, bh_study_level level);

/* The same with a temporary workspace. */
bh_status bh_generate(const bh_study *s, const bh_generate_options *o, bh_frame **reps,
                      bh_frame **leads, bh_error *err);

/* The codebook of the generated files: columns exactly
 * column,label,unit,type,construct,source; one row per distinct column of
 * the unit file then of the leads file.  type: id, categorical, numeric,
 * integer, binary.  source: assumed (drawn from an assumed distribution)
 * or derived (computed: ids, scale composites). */
bh_status bh_generate_codebook(const bh_study *s, bh_frame **out, bh_error *err);

/* Generate and write the reps, leads and codebook files into directory
 * outdir under the base names of the spec's [study] paths.  All files are
 * written to temporaries first and renamed only when every one was
 * written, so a failure leaves none of them (BH_EOUTPUT). */
bh_status bh_generate_write(const bh_study *s, const bh_generate_options *o,
                            const char *outdir, bh_error *err);

/* round(x) of C (halfway cases away from zero, -0.0, NaN and infinities
 * as round gives them, in any rounding mode): the rounding drawn values go
 * through, computed without the library call under the default rounding
 * mode (to nearest). */
double bh_generate_round(double x);

/* Cronbach's alpha expected from a [dgp scale] node's assumptions for
 * continuous items (no rounding or clamping) with latent variance
 * latent_var (1 plus the variance of the latent mean across units):
 * rho = l^2 v / (l^2 v + s^2), alpha = k rho / (1 + (k - 1) rho). */
double bh_generate_expected_alpha(const bh_dgp_node *scale, double latent_var);

#endif
