/* testutil.h - shared helpers for the Criterion suites.
 *
 * Reference values live in fixture files under tests/fixtures/: plain CSV
 * whose leading '#' lines state provenance (tool, version, exact command).
 * Tests run from the repository root.
 */
#ifndef BH_TESTUTIL_H
#define BH_TESTUTIL_H

#include <criterion/criterion.h>
#include <math.h>
#include <stddef.h>

/* Log relative error: correct significant digits of got against want. */
double bht_lre(double got, double want);

/* Assert |got - want| <= rtol * |want| (want == 0: |got| <= rtol).  Extra
 * arguments, if any, are a printf format and its values naming the case. */
#define bht_assert_rel(got, want, rtol, ...)                                   \
    do {                                                                       \
        double g_ = (got), w_ = (want), t_ = (rtol);                           \
        double d_ = fabs(g_ - w_), s_ = fabs(w_) > 0 ? fabs(w_) : 1.0;         \
        if (!(d_ <= t_ * s_ || (isnan(g_) && isnan(w_)))) {                    \
            char ctx_[512];                                                    \
            bht_context(ctx_, sizeof ctx_, " " __VA_ARGS__);                    \
            cr_assert_fail("%s: got %.17g want %.17g (rel err %.3g > %.3g) %s", \
                           #got, g_, w_, d_ / s_, t_, ctx_);                   \
        }                                                                      \
    } while (0)

/* snprintf for assertion context (a function so an empty format is fine). */
void bht_context(char *buf, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct bh_fit;

/* Assert that two fits hold the same results bit for bit: shape, names,
 * flags, estimates, covariance, bread, coefficient table, statistics,
 * per-row arrays (fitted, residuals, score multipliers, leverages,
 * scores), warnings and notes.  what names the case. */
void bht_assert_same_fit(const struct bh_fit *a, const struct bh_fit *b, const char *what);

/* A fixture: rows of comma-separated cells, '#' comment lines skipped, the
 * first non-comment line is the header.  No quoting (fixtures avoid it). */
typedef struct {
    size_t nrow, ncol;
    char **header;      /* ncol */
    char ***cell;       /* nrow x ncol */
} bht_fixture;

bht_fixture *bht_fixture_read(const char *path);  /* fails the test on error */
void bht_fixture_free(bht_fixture *fx);
long bht_fixture_colidx(const bht_fixture *fx, const char *name);
const char *bht_fixture_str(const bht_fixture *fx, size_t row, const char *col);
double bht_fixture_num(const bht_fixture *fx, size_t row, const char *col);

/* Path of the program under test (BH_BIN, else bin/blackhole). */
const char *bht_bin(void);

/* Run a shell command; capture stdout and stderr (malloc'ed, NUL-ended;
 * pass NULL to discard).  Returns the exit status (128+sig if killed). */
int bht_run(const char *cmd, char **out, char **err);

/* Read a whole file (malloc'ed) or NULL. */
char *bht_slurp(const char *path);

/* A fresh temporary directory (malloc'ed path) removed by bht_rmtree. */
char *bht_tmpdir(void);
void bht_rmtree(const char *dir);

#endif
