/* policy.h - compare ways of allocating the same number of leads to reps.
 *
 * The paper recommends distributing leads by experience and past quota
 * achievement instead of evenly.  Mechanism: in the study's lead-level
 * logit (e.g. followup_cluster) the rep's lead volume is a predictor of
 * follow-up, alone and interacted with experience and performance, so
 * giving rep j L leads instead of the observed L_j changes the follow-up
 * probability of each of j's leads.  The expected follow-ups of rep j with
 * L leads are L * p_j(L), p_j(L) = mean over j's observed leads i of
 * logistic(x_i(L)' b), where x_i(L) is lead i's design row with the lead
 * volume set to L (its quality and the rep's covariates unchanged).  The
 * model must be linear in the lead volume (it may enter main effects and
 * products with other variables, not powers); this is checked.
 *
 * Policies, each distributing the same total T = sum of observed L_j over
 * the same reps (whole leads; shares of proportional policies are rounded
 * by largest remainder, ties to the earlier rep):
 *   observed     the data's allocation (status quo)
 *   even         T / J each
 *   novices      proportional to 1 / rank of experience (rank 1 = the least
 *                experienced)
 *   performance  proportional to the rank of performance (the best gets J)
 *   greedy       one lead at a time to the rep with the largest gain in
 *                expected follow-ups at the point estimate, at most `cap`
 *                leads per rep
 * Per policy: expected follow-up rate (sum of L_j p_j(L_j) / T) and
 * expected leads lost (T minus expected follow-ups) at the estimates, and
 * 95% intervals over D coefficient draws from N(b, V) (V the fit's
 * covariance, Cholesky factor, draw d from the stream (seed, d), rng.h).
 * The allocations are fixed at the estimates; the draws carry the
 * estimation uncertainty of their evaluation.
 *
 * Truth mode (options.truth): instead of a fitted model, the spec's
 * data-generating process for the model's response (a lead-level
 * bernoulli node of [dgp]) gives eta: its intercept, group shifts and
 * effect terms on standardised predictors, standardised with the lead
 * file's moments (rep-level variables over its reps, one value each, as
 * the DGP standardises over the generated sample); the lead volume enters
 * through its z-score, so eta stays linear in it.  A random intercept of
 * the node (random_sd) is averaged out: p = E_u logistic(eta + u), u ~
 * N(0, random_sd^2), by 40-node Gauss-Hermite quadrature.  No estimation
 * uncertainty: intervals equal the point values and draws = 0.  Useful on
 * generated data, where it gives the policies' true effect to compare a
 * fitted model's with.
 *
 * Population: the reps with leads in the lead file and no missing value in
 * the model's variables (their leads are the data the model was fitted
 * to).  Ownership: results are the caller's (bh_policy_result_free).
 */
#ifndef BH_POLICY_H
#define BH_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "blackhole/frame.h"
#include "blackhole/status.h"
#include "blackhole/study.h"

#define BH_POLICY_COUNT 5

typedef struct {
    const char *model;        /* lead-level model of the spec; NULL = the
                                 first with data = leads and no random term */
    size_t draws;             /* coefficient draws (default 1000)           */
    uint64_t seed;            /* default: the spec's seed                   */
    int seed_set;
    size_t cap;               /* leads per rep; 0 = ceil(2 x the mean)      */
    const char *experience;   /* default "experience"                       */
    const char *performance;  /* default "performance"                      */
    int truth;                /* evaluate with the spec's true parameters
                                 (see below) instead of a fitted model      */
} bh_policy_options;

void bh_policy_default_options(bh_policy_options *o);

typedef struct {
    const char *name;         /* static: observed, even, novices, ...       */
    double rate, rate_low, rate_high;
    double followups;
    double lost, lost_low, lost_high;
} bh_policy_row;

typedef struct {
    char *model;
    size_t nreps;             /* reps in the population                     */
    double total;             /* leads distributed                          */
    size_t cap, draws;        /* draws = 0 in truth mode                    */
    int truth;
    uint64_t seed;
    char **rep_id;            /* nreps                                      */
    double *experience, *performance, *p_observed; /* nreps                 */
    double *alloc;            /* BH_POLICY_COUNT x nreps, row-major         */
    bh_policy_row rows[BH_POLICY_COUNT];
} bh_policy_result;

void bh_policy_result_free(bh_policy_result *r);

/* Fit the model on `leads` (spec names: apply the spec's [columns] first)
 * and compare the policies.  The lead-volume column is shifted and
 * restored during the call (design rows at other volumes). */
bh_status bh_policy_run(const bh_study *s, bh_frame *leads, const bh_policy_options *o,
                        bh_policy_result **out, bh_error *err);

/* Files: policy.csv, allocation.csv, policy.gp (a gnuplot bar chart of the
 * rates with their intervals; text only in the $bh_text data block) in
 * dir.  BH_EOUTPUT on failure. */
bh_status bh_policy_write(const bh_policy_result *r, const char *dir, bh_error *err);

#endif
