/* gen_data.c - seeded, reproducible benchmark data for bench/run.sh.
 *
 * Usage: gen_data KIND ROWS SEED > FILE
 *   logit   y (0/1), x1..x10, id (2,000 clusters): a logit model with a
 *           cluster effect in both the predictors and the outcome, so the
 *           cluster-robust standard errors differ from the classical ones.
 *   ols     y, x1..x20, id: linear model with heteroskedastic errors.
 *   ingest  12 numeric columns, an integer and a text column (~125 bytes a
 *           row: 1.2 million rows are ~150 MB).
 *
 * The generator is its own (xoshiro256** seeded by splitmix64, Box-Muller
 * normals), so the bytes depend only on KIND, ROWS and SEED, never on the
 * C library's rand().  Values are printed with 6 decimals: every tool reads
 * the same decimal numbers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCLUSTER 2000

typedef struct { uint64_t s[4]; int have; double spare; } rng;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next(rng *r)
{
    uint64_t *s = r->s, res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return res;
}

/* Uniform on (0, 1): 53 random bits, never 0. */
static double unif(rng *r) { return ((next(r) >> 11) + 0.5) * 0x1.0p-53; }

static double norm(rng *r)
{
    if (r->have) {
        r->have = 0;
        return r->spare;
    }
    double u = unif(r), v = unif(r), m = sqrt(-2 * log(u));
    r->spare = m * sin(2 * M_PI * v);
    r->have = 1;
    return m * cos(2 * M_PI * v);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s logit|ols|ingest ROWS SEED\n", argv[0]);
        return 2;
    }
    const char *kind = argv[1];
    long rows = atol(argv[2]);
    uint64_t seed = strtoull(argv[3], NULL, 10);
    rng r = {{0}, 0, 0};
    for (int k = 0; k < 4; k++)
        r.s[k] = splitmix(&seed);
    /* Cluster effects: one for the outcome, one shifting the predictors. */
    double ue[NCLUSTER], ux[NCLUSTER];
    for (int g = 0; g < NCLUSTER; g++) {
        ue[g] = 0.5 * norm(&r);
        ux[g] = 0.7 * norm(&r);
    }
    static char buf[1 << 16];
    setvbuf(stdout, buf, _IOFBF, sizeof buf);
    if (!strcmp(kind, "logit")) {
        static const double b[11] = {-0.5, 0.4, -0.3, 0.2, -0.2, 0.1,
                                     -0.1, 0.3, -0.4, 0.25, 0.5};
        puts("y,x1,x2,x3,x4,x5,x6,x7,x8,x9,x10,id");
        for (long i = 0; i < rows; i++) {
            int g = (int)(next(&r) % NCLUSTER);
            double x[11], eta = b[0] + ue[g];
            for (int j = 1; j <= 9; j++) {
                x[j] = norm(&r) + (j <= 3 ? ux[g] : 0);
                eta += b[j] * x[j];
            }
            x[10] = unif(&r) < 0.3 ? 1 : 0;   /* a dummy */
            eta += b[10] * x[10] + 0.15 * x[1] * x[2];
            int y = unif(&r) < 1 / (1 + exp(-eta));
            printf("%d", y);
            for (int j = 1; j <= 9; j++)
                printf(",%.6f", x[j]);
            printf(",%d,%d\n", (int)x[10], g + 1);
        }
    } else if (!strcmp(kind, "ols")) {
        fputs("y", stdout);
        for (int j = 1; j <= 20; j++)
            printf(",x%d", j);
        puts(",id");
        for (long i = 0; i < rows; i++) {
            int g = (int)(next(&r) % NCLUSTER);
            double x[21], yv = 1.0 + ue[g];
            for (int j = 1; j <= 20; j++) {
                x[j] = norm(&r) + (j <= 5 ? ux[g] : 0);
                yv += (j % 2 ? 0.1 : -0.05) * j / 4.0 * x[j];
            }
            yv += norm(&r) * (0.5 + 0.5 * fabs(x[1]));
            printf("%.6f", yv);
            for (int j = 1; j <= 20; j++)
                printf(",%.6f", x[j]);
            printf(",%d\n", g + 1);
        }
    } else if (!strcmp(kind, "ingest")) {
        for (int j = 1; j <= 12; j++)
            printf("v%d,", j);
        puts("count,group");
        for (long i = 0; i < rows; i++) {
            for (int j = 1; j <= 12; j++)
                printf("%.6f,", (j % 3 ? 10.0 : 1000.0) * norm(&r));
            printf("%d,grp%04d\n", (int)(next(&r) % 100000),
                   (int)(next(&r) % 500));
        }
    } else {
        fprintf(stderr, "gen_data: unknown kind '%s'\n", kind);
        return 2;
    }
    if (fflush(stdout) || ferror(stdout)) {
        perror("gen_data: write");
        return 1;
    }
    return 0;
}
