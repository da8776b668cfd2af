/* rng.h - reproducible random streams for bootstrap and simulation.
 *
 * Every replication (bootstrap draw, simulated data set) owns one stream
 * named by (seed, index).  A stream depends on nothing else: not on the
 * thread that runs it, nor on how many threads there are, nor on the order
 * in which replications run.  So results are bit-identical for any thread
 * count.
 *
 * Generator: xoshiro256** (Blackman & Vigna, "Scrambled linear
 * pseudorandom number generators", ACM TOMS 47(4), 2021), 256-bit state,
 * wrapped as a gsl_rng_type so every gsl_ran_* sampler works on it.  GSL's
 * own generators take 32-bit seeds (mt19937 keeps the low 32 bits), so
 * 10^5 derived 64-bit seeds would collide with probability near 1; here
 * the state is filled from a 64-bit key and, for a fixed seed, distinct
 * indices give distinct keys and distinct starting states (the key
 * derivation is a bijection of the index).
 *
 * Key: k = mix(mix(seed ^ C) ^ index) with mix the splitmix64 finalizer
 * (Steele, Lea & Flood, "Fast splittable pseudorandom number generators",
 * OOPSLA 2014); the four state words are the next four outputs of a
 * splitmix64 sequence started at k.
 *
 * Ownership: streams from bh_rng_stream_alloc() are freed with
 * gsl_rng_free().  bh_rng_parallel_for() owns the streams it makes.
 */
#ifndef BH_RNG_H
#define BH_RNG_H

#include <stddef.h>
#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "blackhole/status.h"

/* The generator type, for gsl_rng_alloc(); gsl_rng_set(r, s) on it starts
 * stream (s, 0).  Output: 64 bits (32 where unsigned long is 32-bit). */
const gsl_rng_type *bh_rng_type(void);

/* The 64-bit key of stream (seed, index). */
uint64_t bh_rng_stream_key(uint64_t seed, uint64_t index);

/* A generator positioned at the start of stream (seed, index); NULL when
 * out of memory. */
gsl_rng *bh_rng_stream_alloc(uint64_t seed, uint64_t index);

/* Reposition r (allocated with bh_rng_type()) at the start of stream
 * (seed, index), without allocating.  BH_EUSAGE when r is of another
 * type. */
bh_status bh_rng_stream_set(gsl_rng *r, uint64_t seed, uint64_t index,
                            bh_error *err);

/* Substream `sub` of stream (seed, index): one per independent part of a
 * replication (e.g. each node of a data-generating process), so that
 * leaving one part out does not shift the draws of the others.  Key:
 * mix(key(seed, index) ^ mix(sub ^ C2)). */
uint64_t bh_rng_substream_key(uint64_t seed, uint64_t index, uint64_t sub);
bh_status bh_rng_substream_set(gsl_rng *r, uint64_t seed, uint64_t index,
                               uint64_t sub, bh_error *err);

/* The next uniform double in [0, 1) of r: the value gsl_rng_uniform(r)
 * returns, with the same change of state.  On a generator of
 * bh_rng_type() it steps the state directly instead of through GSL's
 * function pointers (other types: gsl_rng_uniform). */
double bh_rng_uniform(gsl_rng *r);

/* n such draws into u[0], ..., u[n-1], in order: u[i] is what the
 * (i+1)-th of n consecutive gsl_rng_uniform(r) calls would return, and r
 * ends in the state they would leave.  For loops whose every iteration
 * draws exactly one uniform (masks, Bernoulli outcomes). */
void bh_rng_uniform_fill(gsl_rng *r, double *u, size_t n);

/* The generator's raw pieces, for samplers that keep their own state (ran.h):
 * one step of xoshiro256** (its next 64-bit output), and the state of the
 * stream with a given key (bh_rng_stream_key, bh_rng_substream_key). */
static inline uint64_t bh_rng_next64(uint64_t s[4])
{
    uint64_t x = s[1] * 5;
    uint64_t out = ((x << 7) | (x >> 57)) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return out;
}
void bh_rng_state_from_key(uint64_t s[4], uint64_t key);

/* Upper bound on worker threads (more are silently reduced to this). */
#define BH_RNG_MAX_THREADS 256

/* One replication: index in [0, n), rng positioned at stream (seed, index),
 * thread in [0, threads used) for per-thread scratch space.  Returns BH_OK
 * or an error status with err filled. */
typedef bh_status (*bh_rng_task)(void *ctx, size_t index, gsl_rng *rng,
                                 size_t thread, bh_error *err);

/* Threads that bh_rng_parallel_for() uses for n tasks: threads (0 counts
 * as 1), at most n and BH_RNG_MAX_THREADS. */
size_t bh_rng_threads_used(size_t n, size_t threads);

/* Run task for every index 0..n-1 on POSIX threads, each thread taking a
 * contiguous range of indices in increasing order.  The task must write
 * its results only to slots owned by its index (or its thread's scratch),
 * which makes results independent of the thread count.  On failure, the
 * error of the smallest failing index is returned (the same for any thread
 * count); tasks after a failure in the same thread do not run. */
bh_status bh_rng_parallel_for(size_t n, size_t threads, uint64_t seed,
                              bh_rng_task task, void *ctx, bh_error *err);

#endif
