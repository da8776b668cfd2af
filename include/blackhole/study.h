/* study.h - the study specification: one INI file that drives `generate`,
 * `replicate` and `simulate`.
 *
 * Nothing about a particular study is compiled in: another study is
 * another spec.  The reader (inih) checks the whole file before anything
 * runs and returns a validated bh_study.  Ownership: a bh_study owns every
 * string and array reachable from it; bh_study_free() releases them all.
 *
 * File format.  INI: "[section]" headers, "key = value" lines, comments on
 * lines starting with ';' or '#', and " ;" starting an inline comment (so
 * a value cannot contain " ;").  A value may continue on following lines
 * that start with whitespace (joined with one space); a physical line may
 * hold at most 196 characters (inih's buffer), longer values must be
 * continued this way.  Lists are comma-separated.  Section and key names
 * are case-sensitive.  Every unknown section or key, every repeated key
 * and every repeated section is an error (with "did you mean").
 *
 * [study]                      required
 *   name      (required)  short identifier of the study
 *   citation              the publication replicated
 *   reps      (required)  path of the unit-level data file (one row per
 *                         unit, e.g. sales rep)
 *   leads                 path of the event-level data file (one row per
 *                         event, e.g. marketing lead), nested in units
 *   codebook              path of the codebook `generate` writes
 *   seed      (required)  unsigned 64-bit default seed of `generate`
 *   notes                 free text
 *
 * [columns]                    optional: spec name = data column.  Models,
 *   scales and findings use spec names; data files use columns.  Names not
 *   listed map to themselves.  Two names may not map to one column.
 *   With a [dgp], every name a model, scale or [transform] uses must be a
 *   generated column, a scale or a [columns] name (checked on reading);
 *   without one, bh_study_check_data() checks them against the data.
 *
 * [transform]                  optional: what replicate does to the data
 *   center    list of variables (or scale composites) mean-centred before
 *             the models are fitted (the formulas then use the plain names)
 *   standardize  list of variables centred and divided by their SD
 *
 * [scale NAME]                 a multi-item scale; composite NAME = item mean,
 *                              Cronbach's alpha reported
 *   items     (required)  at least two item names (not NAME, not a scale
 *                         that is built from NAME: circular references fail)
 *   data                  reps (default) or leads
 *   label                 description
 *
 * [model NAME]
 *   formula   (required)  R-style formula (formula.h); a Dirichlet model has
 *                         all components on the left: a + b + c ~ x
 *   family    (required)  gaussian, binomial, fractional, poisson or
 *                         dirichlet
 *   data                  reps (default) or leads
 *   link                  identity, logit, probit, cloglog or log
 *   vcov                  classical, hc0..hc3 or cluster:VAR
 *   param                 dirichlet only: alternative (default; means by
 *                         multinomial logit against `reference`, common
 *                         precision) or common (alpha_j = exp(x b_j))
 *   reference             dirichlet only: reference component (default:
 *                         the first on the left-hand side)
 *   random                random intercepts, e.g. rep_id (a GLMM); the
 *                         formula's (1 | g) terms are the alternative
 *   label                 description shown in tables
 *
 * [finding NAME]
 *   claim     (required)  the published statement in words
 *   model     (required)  a [model] section
 *   term      (required)  a term of that model: variables joined by ':'
 *                         (order does not matter), each in the formula
 *   sign      (required)  + or - (the published direction), or none (not
 *                         reported: estimated, no claim tested)
 *   scale                 coefficient (default), ame (average marginal
 *                         effect) or ai-norton (interaction effect on the
 *                         expected outcome, Ai & Norton 2003)
 *   component             component of a Dirichlet model's response
 *                         (required for dirichlet models)
 *
 * [figure NAME]
 *   kind      (required)  interaction, slopes, coef or margins
 *   model     (required)  a [model] section
 *   x                     variable on the horizontal axis (in the formula)
 *   moderator             moderator (in the formula)
 *   at                    moderator values: numbers or mean, -1sd, +1sd, ...
 *   component             component of a Dirichlet response
 *   title                 plot title
 *
 * The data-generating process (only `generate` and `simulate` use it;
 * every number in it is an assumption and should say why in a comment):
 *
 * [dgp]
 *   n         (required)  number of units (reps); --n-reps overrides
 *   id        (required)  unit id column; values PREFIX001, ...
 *   id_prefix             prefix of unit ids (default "U")
 *   group     (required)  group column (e.g. firm), drawn per unit
 *   levels    (required)  group levels
 *   probs     (required)  their probabilities (sum 1)
 *   id_label, group_label codebook labels
 *   leads_count           a unit-level count variable: each unit gets that
 *                         many rows in the leads file (no leads file
 *                         without it)
 *   lead_id               lead id column (default lead_id)
 *   lead_id_prefix        default "L"
 *   lead_id_label         codebook label
 *   lead_copy             unit-level columns (or scale composites) copied
 *                         onto every lead row (id and group always are)
 *
 * [dgp var NAME]               one generated variable
 *   dist      (required)  normal, lognormal, gamma, poisson, negbin or
 *                         bernoulli
 *   data                  reps (default) or leads
 *   mean                  mean (all but bernoulli; required there)
 *   sd                    SD (normal, lognormal, gamma; required there)
 *   size                  negbin dispersion: var = mu + mu^2/size
 *   digits                round written values to this many decimals
 *                         (the rounded value is used downstream)
 *   min, max              clamp after rounding
 *   missing               probability that a written value is NA (the
 *                         complete value still drives other variables)
 *   random_sd             leads-level only: SD of a normal random
 *                         intercept per unit, on the link scale
 *   label, unit, construct   codebook entries
 *
 * [dgp scale NAME]             Likert items from a latent trait:
 *   items (required), loading (required), noise_sd (required),
 *   item_mean (required), points (default 7), missing, label, construct.
 *   latent = effects + N(0,1); item = clamp(round(item_mean + loading *
 *   latent + N(0, noise_sd^2)), 1, points).  The composite NAME (item mean
 *   of the complete items) is what other variables' effects use.
 *   For k parallel items without rounding, reliability of one item is
 *   rho = loading^2 / (loading^2 + noise_sd^2) and Cronbach's alpha =
 *   k rho / (1 + (k - 1) rho) (latent variance 1 plus group variance).
 *
 * [dgp dirichlet NAME]         shares summing to one:
 *   components (required), reference (required; its predictor is 0),
 *   precision (required; phi = sum of the Dirichlet parameters), digits
 *   (default 4), labels (one per component), unit, construct.
 *   mu_j = exp(eta_j) / sum_k exp(eta_k), alpha_j = phi mu_j.
 *
 * [dgp effects NAME]           linear predictor of a var, scale (latent
 *   mean) or non-reference Dirichlet component NAME:
 *   intercept             added to the predictor (default 0)
 *   group                 one shift per group level
 *   a, a*b, a*b*c = coef  main effects and products of predictors ('*',
 *                         not ':', which inih takes as a key separator); each
 *                         predictor is standardised with the sample mean
 *                         and SD of its own level (units or leads), so main
 *                         effects are effects at the mean, per SD.  The
 *                         coefficients (not intercept or group shifts) are
 *                         multiplied by the effect scale of `generate`.
 *   The predictor is on the identity scale for normal, the log of the mean
 *   for lognormal, gamma, poisson and negbin (mean_i = mean * exp(eta)),
 *   logit for bernoulli, latent mean for scales, and eta_j for Dirichlet.
 */
#ifndef BH_STUDY_H
#define BH_STUDY_H

#include <stddef.h>
#include <stdint.h>
#include "blackhole/frame.h"
#include "blackhole/status.h"

/* The two data levels of a study. */
typedef enum { BH_LEVEL_REPS = 0, BH_LEVEL_LEADS = 1 } bh_study_level;

typedef struct {
    char *name;
    char *label;
    bh_study_level data;
    char **items;
    size_t nitems;
    size_t line;
} bh_study_scale;

typedef struct {
    char *name;
    char *formula;
    char *family;     /* gaussian binomial fractional poisson dirichlet */
    bh_study_level data;
    char *link;       /* NULL = family default */
    char *vcov;       /* NULL = default */
    char *param;      /* dirichlet: "alternative" or "common"; else NULL */
    char *reference;  /* dirichlet reference component; else NULL */
    char *random;     /* random-intercept grouping column or NULL */
    char *label;
    char **responses; /* left-hand side variables (1, or the components) */
    size_t nresponses;
    char **vars;      /* raw variables the formula uses (data names needed) */
    size_t nvars;
    size_t line;
} bh_study_model;

typedef struct {
    char *name;
    char *claim;
    char *model;
    size_t model_index;   /* into bh_study.models */
    char *term;           /* as written, e.g. "experience:prequal" */
    char **term_vars;     /* its variables */
    size_t nterm_vars;
    int sign;             /* +1, -1, or 0 = not reported */
    char *scale;          /* "coefficient", "ame" or "ai-norton" */
    char *component;      /* NULL unless dirichlet */
    size_t line;
} bh_study_finding;

typedef struct {
    char *name;
    char *kind;
    char *model;
    size_t model_index;
    char *x, *moderator, *at, *component, *title;
    size_t line;
} bh_study_figure;

typedef enum {
    BH_DGP_NORMAL = 0, BH_DGP_LOGNORMAL, BH_DGP_GAMMA, BH_DGP_POISSON,
    BH_DGP_NEGBIN, BH_DGP_BERNOULLI
} bh_dgp_dist;

typedef enum { BH_DGP_VAR = 0, BH_DGP_SCALE, BH_DGP_DIRICHLET } bh_dgp_kind;

/* One term of a linear predictor: coef * prod_k z(node[k]). */
typedef struct {
    char *label;          /* as written, "experience*prequal" */
    double coef;
    size_t *node;         /* indices into bh_dgp.nodes */
    size_t nnode;
    size_t line;
} bh_dgp_term;

typedef struct {
    int present;          /* an [dgp effects] section exists */
    double intercept;
    double *group;        /* ngroup shifts or NULL */
    bh_dgp_term *terms;
    size_t nterms;
    size_t line;
} bh_dgp_effects;

typedef struct {
    char *name;
    bh_dgp_kind kind;
    bh_study_level data;
    size_t line;
    /* var */
    bh_dgp_dist dist;
    double mean, sd, size;
    int digits;           /* -1 = no rounding */
    double min, max;      /* NAN = none */
    double missing;
    double random_sd;
    char *label, *unit, *construct;
    /* scale */
    char **items;
    size_t nitems;
    double loading, noise_sd, item_mean;
    int points;
    /* dirichlet */
    char **components;
    size_t ncomp;
    size_t reference;
    double precision;
    char **comp_labels;   /* ncomp or NULL */
    /* effects: one for var and scale; ncomp for dirichlet (reference: none) */
    bh_dgp_effects *effects;
} bh_dgp_node;

typedef struct {
    int present;
    size_t n;
    char *id, *id_prefix, *id_label;
    char *group, *group_label;
    char **levels;
    double *probs;
    size_t nlevels;
    char *leads_count;    /* NULL: no leads file */
    size_t leads_count_node;
    char *lead_id, *lead_id_prefix, *lead_id_label;
    char **lead_copy;
    size_t nlead_copy;
    bh_dgp_node *nodes;   /* in file order */
    size_t nnodes;
    size_t *order;        /* generation order: dependencies first */
} bh_dgp;

typedef struct {
    char *spec_name;
    char *column;
} bh_study_colmap;

typedef struct {
    char *path;           /* the spec file, for messages */
    char *name, *citation, *notes;
    char *reps, *leads, *codebook;
    uint64_t seed;
    bh_study_colmap *columns;
    size_t ncolumns;
    char **center;
    size_t ncenter;
    char **standardize;
    size_t nstandardize;
    bh_study_scale *scales;
    size_t nscales;
    bh_study_model *models;
    size_t nmodels;
    bh_study_finding *findings;
    size_t nfindings;
    bh_study_figure *figures;
    size_t nfigures;
    bh_dgp dgp;
} bh_study;

/* Read and validate a spec file.  Errors are BH_EUSAGE ("spec.ini:12:
 * unknown key 'formla' in [model main]; did you mean 'formula'?"), with
 * err->line set; BH_EINPUT when the file cannot be opened; BH_ENOMEM. */
bh_status bh_study_read(const char *path, bh_study **out, bh_error *err);

/* The same from text in memory; `name` is used in messages. */
bh_status bh_study_read_string(const char *text, const char *name,
                               bh_study **out, bh_error *err);

void bh_study_free(bh_study *s);

/* The data column of a spec name (after [columns]); never NULL. */
const char *bh_study_column(const bh_study *s, const char *spec_name);

/* Index of a model / scale by name, or -1. */
long bh_study_model_index(const bh_study *s, const char *name);
long bh_study_scale_index(const bh_study *s, const char *name);

/* Check that `data` (a file of the given level) holds every column the
 * spec needs there: the raw variables of the models on that level, the
 * items of its scales and the cluster/random columns.  BH_EDATA with one
 * message listing every missing column (and what needs it) otherwise. */
bh_status bh_study_check_data(const bh_study *s, bh_study_level level,
                              const bh_frame *data, bh_error *err);

#endif
