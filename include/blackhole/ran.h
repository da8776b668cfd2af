/* ran.h - fast samplers for the data generator, on the streams of rng.h.
 *
 * A data set of the study's size needs ~10^4 normal, gamma and Poisson
 * draws, and a simulation draws ~10^3 data sets a second per core, so the
 * samplers are on the hot path.  GSL's go through two function pointers per
 * uniform and use the polar Box-Muller normal (a log, a square root and a
 * division per draw, half the pairs thrown away); these draw from the
 * xoshiro256** state directly:
 *
 *   normal    ziggurat with 256 equal-area layers (Marsaglia & Tsang, "The
 *             ziggurat method for generating random variables", J. Stat.
 *             Software 5(8), 2000), layer index and uniform from disjoint
 *             bits of one 64-bit output (avoids the correlation Doornik
 *             2005 found in the original); tail by Marsaglia's method.
 *   gamma     Marsaglia & Tsang, "A simple method for generating gamma
 *             variables", ACM TOMS 26(3), 2000: shape >= 1 directly, shape
 *             < 1 as G(shape + 1) U^(1/shape).
 *   poisson   mean < 10: inversion by sequential search (one uniform);
 *             mean >= 10: transformed rejection with squeeze, PTRS
 *             (Hoermann, "The transformed rejection method for generating
 *             Poisson random variables", Insurance: Mathematics and
 *             Economics 12, 1993).
 *   negbin    the gamma-Poisson mixture: Poisson(G(size, mean / size)).
 *   dirichlet normalised gammas (in logs when a shape is below one, so
 *             small shapes do not underflow to 0/0).
 *   discrete  inversion of the cumulative probabilities (one uniform).
 *
 * The uniforms are those of gsl_rng_uniform on the same stream: a
 * bh_ran positioned at (seed, index, sub) gives bh_ran_uniform() values
 * equal to gsl_rng_uniform() on a bh_rng_type() generator at the same
 * substream. */
#ifndef BH_RAN_H
#define BH_RAN_H

#include <stddef.h>
#include <stdint.h>

/* Layers of the normal ziggurat. */
#define BH_RAN_ZIG_N 256

/* A stream and the samplers' tables (computed once per object; reposition
 * the stream with bh_ran_substream for each replication). */
typedef struct {
    uint64_t s[4];                       /* xoshiro256** state */
    double zx[BH_RAN_ZIG_N + 1];         /* layer right edges, zx[N] = 0 */
    double zf[BH_RAN_ZIG_N + 1];         /* exp(-zx^2 / 2) */
    double lfact[256];                   /* log(k!) for k < 256 */
} bh_ran;

/* NULL when out of memory.  Positioned at substream 0 of stream (0, 0). */
bh_ran *bh_ran_alloc(void);
void bh_ran_free(bh_ran *r);

/* Position r at substream sub of stream (seed, index) (rng.h's keys). */
void bh_ran_substream(bh_ran *r, uint64_t seed, uint64_t index, uint64_t sub);

/* Uniform on [0, 1) (53 random bits); n of them into u. */
double bh_ran_uniform(bh_ran *r);
void bh_ran_uniform_fill(bh_ran *r, double *u, size_t n);

/* Standard normal; n of them into x. */
double bh_ran_normal(bh_ran *r);
void bh_ran_normal_fill(bh_ran *r, double *x, size_t n);

/* Gamma with shape a > 0 and scale b (mean a b). */
double bh_ran_gamma(bh_ran *r, double a, double b);

/* A gamma shape's constants, for many draws of one shape (the scale may
 * vary: G(a, b) = b G(a, 1)): set once, then bh_ran_gamma_std draws
 * G(a, 1), the same draws as bh_ran_gamma(r, a, 1). */
typedef struct {
    double d, c;       /* Marsaglia-Tsang: d = a' - 1/3, c = 1 / sqrt(9 d) */
    double inv_a;      /* 1 / a when a < 1 (a' = a + 1), else 0 */
} bh_ran_gamma_shape;
void bh_ran_gamma_shape_set(bh_ran_gamma_shape *g, double a);
double bh_ran_gamma_std(bh_ran *r, const bh_ran_gamma_shape *g);

/* Poisson with mean mu >= 0, as a double (exact for counts below 2^53);
 * a mean of NaN or infinity is returned as it is (the caller's overflow
 * shows in the data), a negative one gives 0. */
double bh_ran_poisson(bh_ran *r, double mu);

/* Negative binomial with size > 0 and mean mu >= 0 (variance mu + mu^2 /
 * size). */
double bh_ran_negbin(bh_ran *r, double size, double mu);

/* theta ~ Dirichlet(alpha[0..k-1]), every alpha > 0. */
void bh_ran_dirichlet(bh_ran *r, size_t k, const double *alpha, double *theta);

/* An index in [0, k) with probabilities cum[j] - cum[j-1], given the
 * cumulative sums cum[0..k-1] (cum[k-1] the total, need not be 1). */
size_t bh_ran_discrete(bh_ran *r, size_t k, const double *cum);
/* n such draws into out (k <= INT_MAX), the same as n calls. */
void bh_ran_discrete_fill(bh_ran *r, size_t k, const double *cum, int *out, size_t n);

#endif
