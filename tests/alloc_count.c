/* alloc_count.c - an LD_PRELOAD library that counts the program's calls of
 * malloc, calloc, realloc, aligned_alloc and posix_memalign and, at exit,
 * appends "allocations N" to the file named by BH_ALLOC_OUT.  The test of
 * issue #8's "no allocation per replication" runs `blackhole simulate`
 * under it with two replication counts and compares (test_cli_simulate.c).
 * Built by the Makefile without sanitizers (they interpose malloc too). */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static atomic_long count;

void *malloc(size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_realloc(p, n);
}

void *aligned_alloc(size_t al, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    return __libc_memalign(al, n);
}

int posix_memalign(void **p, size_t al, size_t n)
{
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    *p = __libc_memalign(al, n);
    return *p ? 0 : 12; /* ENOMEM */
}

__attribute__((destructor)) static void report(void)
{
    const char *path = getenv("BH_ALLOC_OUT");
    if (!path)
        return;
    FILE *f = fopen(path, "a");
    if (f) {
        fprintf(f, "allocations %ld\n", (long)atomic_load(&count));
        fclose(f);
    }
}
