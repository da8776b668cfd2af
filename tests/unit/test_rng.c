/* test_rng.c - per-replication random streams.
 *
 * References: tests/fixtures/boot/rng_ref.csv, 64-bit outputs of streams
 * (seed, index) from tests/fixtures/boot/rng_ref.py, an independent Python
 * implementation of splitmix64 (checked there against its published test
 * vector) and xoshiro256** (Blackman & Vigna 2021).  The other tests are
 * properties: same stream, same numbers; other index or seed, other
 * numbers; identical results for any thread count.
 */
#include "testutil.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "blackhole/rng.h"

Test(rng, matches_reference_implementation)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/rng_ref.csv");
    cr_assert_eq(fx->nrow, 30);
    for (size_t row = 0; row < fx->nrow; row += 6) {
        uint64_t seed = strtoull(bht_fixture_str(fx, row, "seed"), NULL, 10);
        uint64_t index = strtoull(bht_fixture_str(fx, row, "index"), NULL, 10);
        gsl_rng *r = bh_rng_stream_alloc(seed, index);
        cr_assert_not_null(r);
        uint64_t v[1000];
        for (size_t k = 0; k < 1000; k++)
            v[k] = gsl_rng_get(r);
        for (size_t q = row; q < row + 6; q++) {
            size_t draw = (size_t)atoi(bht_fixture_str(fx, q, "draw"));
            uint64_t want = strtoull(bht_fixture_str(fx, q, "value"), NULL, 10);
            cr_assert_eq(v[draw - 1], want,
                         "stream (%" PRIu64 ", %" PRIu64 ") draw %zu: got %"
                         PRIu64 " want %" PRIu64, seed, index, draw,
                         v[draw - 1], want);
        }
        gsl_rng_free(r);
    }
    bht_fixture_free(fx);
}

Test(rng, same_stream_same_numbers)
{
    gsl_rng *a = bh_rng_stream_alloc(42, 7), *b = bh_rng_stream_alloc(42, 7);
    for (int k = 0; k < 1000; k++)
        cr_assert(gsl_rng_uniform(a) == gsl_rng_uniform(b));
    /* Repositioning an existing generator restarts the stream. */
    bh_error err;
    cr_assert_eq(bh_rng_stream_set(a, 42, 7, &err), BH_OK);
    gsl_rng *c = bh_rng_stream_alloc(42, 7);
    for (int k = 0; k < 100; k++)
        cr_assert_eq(gsl_rng_get(a), gsl_rng_get(c));
    /* gsl_rng_set(r, s) is stream (s, 0). */
    gsl_rng *d = gsl_rng_alloc(bh_rng_type());
    gsl_rng_set(d, 99);
    gsl_rng *e = bh_rng_stream_alloc(99, 0);
    for (int k = 0; k < 100; k++)
        cr_assert_eq(gsl_rng_get(d), gsl_rng_get(e));
    gsl_rng_free(a);
    gsl_rng_free(b);
    gsl_rng_free(c);
    gsl_rng_free(d);
    gsl_rng_free(e);
}

Test(rng, other_index_or_seed_other_numbers)
{
    /* Keys of one seed are distinct for distinct indices (a bijection). */
    for (uint64_t i = 0; i < 1000; i++)
        for (uint64_t k = i + 1; k < 1000; k++)
            cr_assert_neq(bh_rng_stream_key(5, i), bh_rng_stream_key(5, k));
    gsl_rng *a = bh_rng_stream_alloc(5, 0), *b = bh_rng_stream_alloc(5, 1),
            *c = bh_rng_stream_alloc(6, 0);
    int same_ab = 0, same_ac = 0;
    for (int k = 0; k < 100; k++) {
        uint64_t x = gsl_rng_get(a), y = gsl_rng_get(b), z = gsl_rng_get(c);
        same_ab += x == y;
        same_ac += x == z;
    }
    cr_assert_eq(same_ab, 0);
    cr_assert_eq(same_ac, 0);
    gsl_rng_free(a);
    gsl_rng_free(b);
    gsl_rng_free(c);
}

/* Uniform draws: mean within 5 standard errors of 1/2 (sd 1/sqrt(12n)),
 * and uniform_int(6) counts within 5 binomial standard errors of n/6. */
Test(rng, distribution_sanity)
{
    gsl_rng *r = bh_rng_stream_alloc(2024, 3);
    size_t n = 200000, cnt[6] = {0};
    double s = 0;
    for (size_t k = 0; k < n; k++) {
        double u = gsl_rng_uniform(r);
        cr_assert(u >= 0 && u < 1);
        s += u;
        cnt[gsl_rng_uniform_int(r, 6)]++;
    }
    cr_assert(fabs(s / (double)n - 0.5) < 5 / sqrt(12.0 * (double)n));
    double sd = sqrt((double)n * (1.0 / 6) * (5.0 / 6));
    for (int k = 0; k < 6; k++)
        cr_assert(fabs((double)cnt[k] - (double)n / 6) < 5 * sd, "face %d: %zu", k,
                  cnt[k]);
    gsl_rng_free(r);
}

typedef struct {
    double *out;
    size_t fail1, fail2;
} task_ctx;

static bh_status draw_task(void *vctx, size_t i, gsl_rng *rng, size_t thread,
                           bh_error *err)
{
    task_ctx *c = vctx;
    (void)thread;
    if (i == c->fail1 || i == c->fail2)
        return bh_error_set(err, BH_ENUMERIC, "task %zu failed", i);
    /* Several draws per index, through a gsl_ran sampler. */
    c->out[2 * i] = gsl_ran_gaussian(rng, 1.0);
    c->out[2 * i + 1] = gsl_rng_uniform(rng);
    return BH_OK;
}

Test(rng, parallel_for_independent_of_threads)
{
    size_t n = 1001;
    double *ref = calloc(2 * n, sizeof *ref), *got = calloc(2 * n, sizeof *got);
    task_ctx c = {ref, (size_t)-1, (size_t)-1};
    bh_error err;
    cr_assert_eq(bh_rng_parallel_for(n, 1, 77, draw_task, &c, &err), BH_OK);
    /* Each index sees exactly stream (77, index). */
    gsl_rng *r = bh_rng_stream_alloc(77, 500);
    cr_assert(ref[1000] == gsl_ran_gaussian(r, 1.0));
    gsl_rng_free(r);
    size_t th[] = {2, 3, 4, 16, 5000};
    for (size_t k = 0; k < 5; k++) {
        memset(got, 0, 2 * n * sizeof *got);
        c.out = got;
        cr_assert_eq(bh_rng_parallel_for(n, th[k], 77, draw_task, &c, &err), BH_OK);
        cr_assert_eq(memcmp(ref, got, 2 * n * sizeof *got), 0, "%zu threads", th[k]);
    }
    cr_assert_eq(bh_rng_threads_used(n, 0), 1);
    cr_assert_eq(bh_rng_threads_used(3, 8), 3);
    cr_assert_eq(bh_rng_threads_used(100000, 100000), BH_RNG_MAX_THREADS);
    free(ref);
    free(got);
}

Test(rng, parallel_for_reports_first_failure)
{
    size_t n = 1000;
    double *out = calloc(2 * n, sizeof *out);
    task_ctx c = {out, 37, 900};
    size_t th[] = {1, 2, 4, 9};
    for (size_t k = 0; k < 4; k++) {
        bh_error err;
        bh_error_clear(&err);
        cr_assert_eq(bh_rng_parallel_for(n, th[k], 1, draw_task, &c, &err),
                     BH_ENUMERIC);
        cr_assert(strstr(err.msg, "task 37 failed"), "%zu threads: %s", th[k],
                  err.msg);
    }
    free(out);
}

Test(rng, wrong_generator_type)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    bh_error err;
    cr_assert_eq(bh_rng_stream_set(r, 1, 2, &err), BH_EUSAGE);
    cr_assert(strstr(err.msg, "mt19937"), "%s", err.msg);
    gsl_rng_free(r);
    cr_assert_eq(bh_rng_parallel_for(0, 4, 1, draw_task, NULL, &err), BH_OK);
}

/* The uniform of draw k is the reference's 64-bit output k with its top 53
 * bits as a fraction (rng.c's get_double), and bh_rng_uniform /
 * bh_rng_uniform_fill give exactly gsl_rng_uniform's sequence, leaving the
 * same state, mixed with other draws in any order. */
Test(rng, fast_uniform_matches_reference_and_gsl)
{
    bht_fixture *fx = bht_fixture_read("tests/fixtures/boot/rng_ref.csv");
    for (size_t row = 0; row < fx->nrow; row += 6) {
        uint64_t seed = strtoull(bht_fixture_str(fx, row, "seed"), NULL, 10);
        uint64_t index = strtoull(bht_fixture_str(fx, row, "index"), NULL, 10);
        gsl_rng *a = bh_rng_stream_alloc(seed, index), *b = bh_rng_stream_alloc(seed, index);
        double u[1000];
        /* fill in uneven pieces (0, 1, 2, ... draws), single draws between */
        size_t k = 0, piece = 0;
        while (k < 1000) {
            size_t m = piece < 1000 - k ? piece : 1000 - k;
            bh_rng_uniform_fill(a, u + k, m);
            k += m;
            if (k < 1000)
                u[k++] = bh_rng_uniform(a);
            piece++;
        }
        for (k = 0; k < 1000; k++)
            cr_assert(u[k] == gsl_rng_uniform(b), "draw %zu", k + 1);
        for (size_t q = row; q < row + 6; q++) {
            size_t draw = (size_t)atoi(bht_fixture_str(fx, q, "draw"));
            uint64_t want = strtoull(bht_fixture_str(fx, q, "value"), NULL, 10);
            cr_assert(u[draw - 1] == (double)(want >> 11) * 0x1.0p-53, "draw %zu", draw);
        }
        /* same state afterwards */
        for (k = 0; k < 10; k++)
            cr_assert_eq(gsl_rng_get(a), gsl_rng_get(b));
        gsl_rng_free(a);
        gsl_rng_free(b);
    }
    bht_fixture_free(fx);
}

Test(rng, fast_uniform_other_generator_type)
{
    /* not ours: the same numbers through gsl_rng_uniform */
    gsl_rng *a = gsl_rng_alloc(gsl_rng_mt19937), *b = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(a, 5);
    gsl_rng_set(b, 5);
    double u[37];
    bh_rng_uniform_fill(a, u, 37);
    for (int k = 0; k < 37; k++)
        cr_assert(u[k] == gsl_rng_uniform(b));
    cr_assert(bh_rng_uniform(a) == gsl_rng_uniform(b));
    gsl_rng_free(a);
    gsl_rng_free(b);
}
