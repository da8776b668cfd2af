/* cli.h - the command-line layer: command table, option parsing, exit codes.
 * Only this layer prints and chooses exit codes. */
#ifndef BH_CLI_H
#define BH_CLI_H

#include <stddef.h>
#include "blackhole/frame.h"
#include "blackhole/status.h"

/* Documented exit codes (README, --help, man page). */
enum {
    BH_EXIT_OK = 0,
    BH_EXIT_ESTIMATION = 1,   /* estimation failed or did not converge */
    BH_EXIT_USAGE = 2,        /* bad command line, formula or spec       */
    BH_EXIT_INPUT = 3,        /* unreadable or unusable input data       */
    BH_EXIT_OUTPUT = 4        /* cannot write output                     */
};

int bh_cli_exit_code(bh_status s);

/* Option descriptor: long name (without --), short letter (0 = none),
 * whether it takes a value, and a help line. */
typedef struct {
    const char *name;
    char short_name;
    int has_arg;
    const char *arg_name;
    const char *help;
} bh_cli_option;

/* Parsed command line: values per option (repeatable options collect all
 * values in order) and positional arguments. */
typedef struct {
    const bh_cli_option *opts;
    size_t nopts;
    char ***values;           /* values[k][0..count[k]-1] */
    size_t *count;
    char **pos;
    size_t npos;
} bh_cli_args;

/* Parse argv (without the command name).  Errors name the unknown option
 * and suggest the closest known one. "--help" sets *help. */
bh_status bh_cli_parse(int argc, char **argv, const bh_cli_option *opts, size_t nopts,
                       bh_cli_args *out, int *help, bh_error *err);
void bh_cli_args_free(bh_cli_args *a);
/* Last value of an option or NULL; all values with count. */
const char *bh_cli_get(const bh_cli_args *a, const char *name);
char **bh_cli_all(const bh_cli_args *a, const char *name, size_t *count);
int bh_cli_flag(const bh_cli_args *a, const char *name);

/* Print usage of a command (for --help and usage errors). */
void bh_cli_print_options(const bh_cli_option *opts, size_t nopts);

/* Print an error the uniform way ("blackhole fit: <message>") and return
 * the exit code for its status. */
int bh_cli_fail(const char *cmd, const bh_error *err);

/* Parse a separator option value (",", ";", "tab", "\t"). */
bh_status bh_cli_sep(const char *s, char *sep, bh_error *err);

/* Split "a,b,c" into a malloc'ed array of malloc'ed strings. */
char **bh_cli_split(const char *s, char delim, size_t *n);
void bh_cli_free_list(char **v, size_t n);

/* Read the DATA argument with the shared --sep / --na options. */
bh_status bh_cli_read_data(const char *path, const bh_cli_args *a, bh_frame **out,
                           bh_error *err);

/* Options every data-reading command accepts. */
#define BH_CLI_DATA_OPTIONS                                                        \
    {"sep", 0, 1, "C", "field separator: ',' (default), ';' or 'tab'"},             \
    {"na", 0, 1, "S", "also treat S as missing (repeatable; '' and NA always are)"}

/* Options of every command that estimates a model (fit, predict). */
#define BH_CLI_MODEL_OPTIONS                                                              \
    {"family", 0, 1, "F", "gaussian (default), binomial, fractional, poisson, dirichlet"},  \
    {"link", 0, 1, "L", "identity, logit, probit, cloglog or log (default: the family's)"}, \
    {"vcov", 0, 1, "V", "classical, hc0, hc1, hc2, hc3 or cluster:VAR (fractional: hc0)"},  \
    {"weights", 0, 1, "COL", "prior weights column (binomial: number of trials)"},          \
    {"weight-type", 0, 1, "T", "analytic (default; R's weights) or frequency (counts)"},    \
    {"level", 0, 1, "L", "confidence level in percent (default 95)"},                      \
    {"tol", 0, 1, "X", "IRLS tolerance on the relative deviance change (default 1e-10)"},  \
    {"maxiter", 0, 1, "N", "IRLS iteration limit (default 100)"},                          \
    {"rank-tol", 0, 1, "X", "rank-detection tolerance of the QR factorisation (1e-9)"},    \
    {"firth", 0, 0, NULL, "Firth's bias-reduced logistic regression (binomial, logit)"},    \
    {"nagq", 0, 1, "K", "mixed models: 1 = Laplace (default), up to 25 quadrature points"}, \
    {"param", 0, 1, "P", "dirichlet: common (default) or alternative (means + precision)"}, \
    {"base", 0, 1, "Y", "dirichlet alternative: base response (default: the first)"},     \
    {"squeeze", 0, 0, NULL, "dirichlet: Smithson-Verkuilen transform for shares of 0 or 1"}, \
    {"sum-tol", 0, 1, "X", "dirichlet: tolerance for shares summing to 1 (default 1e-6)"}, \
    {"trace", 0, 0, NULL, "print each IRLS iteration on standard error"}

/* Fill a model spec from the BH_CLI_MODEL_OPTIONS (and, when the command
 * has them, the bootstrap options); formula and name are left unset. */
#include "blackhole/model.h"
bh_status bh_cli_model_spec(const bh_cli_args *a, bh_model_spec *sp, bh_error *err);
/* --trace printer (ctx is the model name). */
void bh_cli_trace_iter(void *ctx, size_t iter, double dev, double change, unsigned halvings);
/* The spec of a command's single model: bh_cli_model_spec, then formula,
 * the name "(1)" and --trace. */
bh_status bh_cli_single_spec(const bh_cli_args *a, const char *formula, bh_model_spec *sp,
                             bh_error *err);
/* Parse a number option within [lo, hi]. */
bh_status bh_cli_number(const char *name, const char *s, double lo, double hi, double *out,
                        bh_error *err);

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} bh_cli_command;

int bh_cmd_fit(int argc, char **argv);
int bh_cmd_describe(int argc, char **argv);
int bh_cmd_predict(int argc, char **argv);
int bh_cmd_replicate(int argc, char **argv);
int bh_cmd_generate(int argc, char **argv);
int bh_cmd_plot(int argc, char **argv);
int bh_cmd_margins(int argc, char **argv);
int bh_cmd_simulate(int argc, char **argv);
int bh_cmd_policy(int argc, char **argv);

/* simulate's parsed command line, shared with the MPI driver (src/mpi/). */
#include "blackhole/simulate.h"
typedef struct {
    bh_cli_args args;
    bh_simulate_options opt;    /* arrays point into the fields below      */
    const char *study, *out;
    size_t *n, nn;
    double *scales;
    size_t nscales;
    char **models;
    size_t nmodels;
    char **merge;               /* --merge directories, or NULL            */
    size_t nmerge;
    int quiet;
} bh_cli_sim;
bh_status bh_cli_sim_parse(int argc, char **argv, bh_cli_sim *c, int *help, bh_error *err);
void bh_cli_sim_free(bh_cli_sim *c);
/* The text table of the key terms on stdout. */
void bh_cli_sim_report(const bh_simulate_result *r, const char *out_dir);

#endif
