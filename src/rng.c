/* rng.c - per-replication random streams (see rng.h): xoshiro256** as a
 * gsl_rng_type, splitmix64 key derivation, and a pthreads loop that gives
 * every index its own stream. */
#include "blackhole/rng.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Odd constant (fractional part of the golden ratio), splitmix64's
 * increment. */
#define RNG_GAMMA 0x9e3779b97f4a7c15ULL
/* Separates the seed's hash from the index's (first 64 bits of the
 * fractional part of sqrt(2)); any fixed constant would do. */
#define RNG_SEED_SALT 0x6a09e667f3bcc908ULL
/* Separates substream numbers from stream keys (first 64 bits of the
 * fractional part of sqrt(3)). */
#define RNG_SUB_SALT 0xbb67ae8584caa73bULL

typedef struct {
    uint64_t s[4];
} rng_state;

/* splitmix64 output function: a bijection of 64-bit words. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t next64(rng_state *st)
{
    return bh_rng_next64(st->s);
}

/* Fill the state from a key by a splitmix64 sequence; consecutive outputs
 * of a bijection of distinct inputs cannot all be zero, so the forbidden
 * all-zero state never occurs. */
void bh_rng_state_from_key(uint64_t s[4], uint64_t key)
{
    uint64_t x = key;
    for (int k = 0; k < 4; k++) {
        x += RNG_GAMMA;
        s[k] = mix64(x);
    }
}

static void state_from_key(rng_state *st, uint64_t key)
{
    bh_rng_state_from_key(st->s, key);
}

uint64_t bh_rng_stream_key(uint64_t seed, uint64_t index)
{
    return mix64(mix64(seed ^ RNG_SEED_SALT) ^ index);
}

static void type_set(void *vstate, unsigned long seed)
{
    state_from_key(vstate, bh_rng_stream_key((uint64_t)seed, 0));
}

#if ULONG_MAX >= 0xffffffffffffffffULL
#define RNG_MAX 0xffffffffffffffffUL
static unsigned long type_get(void *vstate)
{
    return (unsigned long)next64(vstate);
}
#else
#define RNG_MAX 0xffffffffUL
static unsigned long type_get(void *vstate)
{
    /* The high bits are the better ones for xoshiro256**'s scrambler. */
    return (unsigned long)(next64(vstate) >> 32);
}
#endif

/* 53 random bits: a double in [0, 1). */
static double type_get_double(void *vstate)
{
    return (double)(next64(vstate) >> 11) * 0x1.0p-53;
}

static const gsl_rng_type rng_type = {
    "bh_xoshiro256ss", RNG_MAX, 0, sizeof(rng_state),
    type_set, type_get, type_get_double
};

double bh_rng_uniform(gsl_rng *r)
{
    if (r->type != &rng_type)
        return gsl_rng_uniform(r);
    return type_get_double(r->state);
}

void bh_rng_uniform_fill(gsl_rng *r, double *u, size_t n)
{
    if (r->type != &rng_type) {
        for (size_t i = 0; i < n; i++)
            u[i] = gsl_rng_uniform(r);
        return;
    }
    /* the state in a local copy, so it stays in registers over the loop */
    rng_state st = *(rng_state *)r->state;
    for (size_t i = 0; i < n; i++)
        u[i] = type_get_double(&st);
    *(rng_state *)r->state = st;
}

const gsl_rng_type *bh_rng_type(void)
{
    return &rng_type;
}

gsl_rng *bh_rng_stream_alloc(uint64_t seed, uint64_t index)
{
    gsl_rng *r = gsl_rng_alloc(&rng_type);
    if (r)
        state_from_key(r->state, bh_rng_stream_key(seed, index));
    return r;
}

bh_status bh_rng_stream_set(gsl_rng *r, uint64_t seed, uint64_t index,
                            bh_error *err)
{
    if (!r || r->type != &rng_type)
        return bh_error_set(err, BH_EUSAGE,
                            "rng: stream (%llu, %llu) requested on a "
                            "generator of type '%s' (expected %s)",
                            (unsigned long long)seed,
                            (unsigned long long)index,
                            r ? gsl_rng_name(r) : "(null)", rng_type.name);
    state_from_key(r->state, bh_rng_stream_key(seed, index));
    return BH_OK;
}

uint64_t bh_rng_substream_key(uint64_t seed, uint64_t index, uint64_t sub)
{
    return mix64(bh_rng_stream_key(seed, index) ^ mix64(sub ^ RNG_SUB_SALT));
}

bh_status bh_rng_substream_set(gsl_rng *r, uint64_t seed, uint64_t index,
                               uint64_t sub, bh_error *err)
{
    bh_status s = bh_rng_stream_set(r, seed, index, err);
    if (s == BH_OK)
        state_from_key(r->state, bh_rng_substream_key(seed, index, sub));
    return s;
}

size_t bh_rng_threads_used(size_t n, size_t threads)
{
    size_t t = threads ? threads : 1;
    if (t > BH_RNG_MAX_THREADS)
        t = BH_RNG_MAX_THREADS;
    if (t > n)
        t = n ? n : 1;
    return t;
}

typedef struct {
    size_t lo, hi, thread;
    uint64_t seed;
    bh_rng_task task;
    void *ctx;
    bh_status st;
    size_t fail_index;
    bh_error err;
} rng_job;

static void *run_job(void *arg)
{
    rng_job *job = arg;
    gsl_rng *r = gsl_rng_alloc(&rng_type);
    if (!r) {
        job->fail_index = job->lo;
        job->st = bh_error_set(&job->err, BH_ENOMEM,
                               "rng: out of memory (thread %zu)", job->thread);
        return NULL;
    }
    for (size_t i = job->lo; i < job->hi; i++) {
        state_from_key(r->state, bh_rng_stream_key(job->seed, i));
        bh_status st = job->task(job->ctx, i, r, job->thread, &job->err);
        if (st != BH_OK) {
            job->st = st;
            job->fail_index = i;
            break;
        }
    }
    gsl_rng_free(r);
    return NULL;
}

bh_status bh_rng_parallel_for(size_t n, size_t threads, uint64_t seed,
                              bh_rng_task task, void *ctx, bh_error *err)
{
    if (!task)
        return bh_error_set(err, BH_EINTERNAL, "rng: parallel loop without a task");
    if (n == 0)
        return BH_OK;
    size_t T = bh_rng_threads_used(n, threads);
    rng_job *jobs = calloc(T, sizeof *jobs);
    pthread_t *tid = calloc(T, sizeof *tid);
    unsigned char *started = calloc(T, 1);
    if (!jobs || !tid || !started) {
        free(jobs);
        free(tid);
        free(started);
        return bh_error_set(err, BH_ENOMEM, "rng: out of memory (%zu threads)", T);
    }
    for (size_t t = 0; t < T; t++) {
        jobs[t].lo = t * n / T;
        jobs[t].hi = (t + 1) * n / T;
        jobs[t].thread = t;
        jobs[t].seed = seed;
        jobs[t].task = task;
        jobs[t].ctx = ctx;
        jobs[t].st = BH_OK;
        bh_error_clear(&jobs[t].err);
    }
    /* Thread 0's range runs on the calling thread; a range whose thread
     * cannot be created runs there too, after it: results do not depend on
     * which thread runs a range. */
    for (size_t t = 1; t < T; t++)
        started[t] = pthread_create(&tid[t], NULL, run_job, &jobs[t]) == 0;
    run_job(&jobs[0]);
    for (size_t t = 1; t < T; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            run_job(&jobs[t]);
    }
    bh_status st = BH_OK;
    for (size_t t = 0; t < T; t++)
        if (jobs[t].st != BH_OK) {
            /* Ranges are in index order: the first failing range holds the
             * smallest failing index. */
            st = jobs[t].st;
            if (err)
                *err = jobs[t].err;
            break;
        }
    free(jobs);
    free(tid);
    free(started);
    return st;
}
