/* mpi_main.c - `blackhole-mpi simulate ...`: the simulate command on an MPI
 * job (built by `make mpi` with mpicc; not part of the library).
 *
 * Dynamic work sharing: rank 0 prepares the output directory (design file,
 * pseudo-true values), then serves requests; each worker rank asks for a
 * chunk of replication indices, runs them, and returns the result blocks
 * with its next request.  Rank 0 appends every block to replications.csv
 * as it arrives and, at the end, writes the summaries exactly as the
 * threaded run does (bh_simulate_finish sorts by replication), so the files
 * are byte-identical to `blackhole simulate` with any thread count.  With
 * one rank it is the threaded run.  With --threads T each worker rank runs
 * its chunks on T threads (one workspace each; default 1 per rank).  Ctrl-C / SIGTERM on rank 0 stops handing
 * out work; what finished is kept and --resume continues.
 *
 * Messages: worker -> 0, TAG_RESULT, char[] (blocks of the previous chunk,
 * empty on the first request); TAG_ERROR, char[] (message).  0 -> worker,
 * TAG_WORK, uint64[] (a chunk; empty = stop).
 */
#include <mpi.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_errno.h>

#include "blackhole/simulate.h"
#include "blackhole/study.h"
#include "cli.h"

enum { TAG_RESULT = 1, TAG_ERROR = 2, TAG_WORK = 3 };
#define MAX_CHUNK 16
#define MAX_RANK_THREADS 256

static volatile sig_atomic_t *stop_slot(void)
{
    /* a signal handler reaches nothing else */
    static volatile sig_atomic_t flag;
    return &flag;
}

static void on_signal(int sig)
{
    (void)sig;
    *stop_slot() = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: mpirun -np K blackhole-mpi simulate --study SPEC --out DIR [options]\n"
                    "(the options of `blackhole simulate --help`; --merge is not supported)\n");
}

/* Threads of a worker rank: thread t runs the chunk's items t, t + T, ...
 * with its own workspace; blocks are joined in chunk order afterwards, so
 * the bytes do not depend on T. */
typedef struct {
    bh_simulate_worker *wk;
    const uint64_t *chunk;
    size_t n, t, T;
    char **blk;
    int failed;
    size_t failed_at;
    bh_error err;
} rank_thread;

static void *rank_thread_run(void *arg)
{
    rank_thread *r = arg;
    for (size_t k = r->t; k < r->n; k += r->T) {
        size_t nf = 0;
        if (bh_simulate_run_one(r->wk, (size_t)r->chunk[k], &r->blk[k], &nf, &r->err) != BH_OK) {
            r->failed = 1;
            r->failed_at = k;
            break;
        }
    }
    return NULL;
}

static void send_error(const char *msg)
{
    MPI_Send(msg, (int)strlen(msg) + 1, MPI_CHAR, 0, TAG_ERROR, MPI_COMM_WORLD);
}

/* A worker: request, run the chunk (on T threads), return the blocks with
 * the next request. */
static int worker(const bh_simulate_plan *plan, size_t T)
{
    size_t cap = MAX_CHUNK * T;
    rank_thread *th = calloc(T, sizeof *th);
    uint64_t *chunk = malloc(cap * sizeof *chunk);
    char **blk = calloc(cap, sizeof *blk);
    pthread_t *tid = malloc(T * sizeof *tid);
    int rc = 0;
    if (!th || !chunk || !blk || !tid)
        rc = 1;
    for (size_t t = 0; rc == 0 && t < T; t++)
        if (!(th[t].wk = bh_simulate_worker_alloc(plan)))
            rc = 1;
    if (rc) {
        send_error("out of memory");
        goto out;
    }
    char *out = NULL;
    size_t len = 0;
    for (;;) {
        MPI_Send(out ? out : "", (int)len, MPI_CHAR, 0, TAG_RESULT, MPI_COMM_WORLD);
        free(out);
        out = NULL;
        len = 0;
        MPI_Status st;
        MPI_Recv(chunk, (int)cap, MPI_UINT64_T, 0, TAG_WORK, MPI_COMM_WORLD, &st);
        int n = 0;
        MPI_Get_count(&st, MPI_UINT64_T, &n);
        if (n == 0)
            break;
        size_t used = T < (size_t)n ? T : (size_t)n, started = 0;
        for (size_t t = 0; t < used; t++) {
            th[t].chunk = chunk;
            th[t].n = (size_t)n;
            th[t].t = t;
            th[t].T = used;
            th[t].blk = blk;
            th[t].failed = 0;
            if (used == 1)
                rank_thread_run(&th[t]);
            else if (pthread_create(&tid[t], NULL, rank_thread_run, &th[t]) != 0) {
                th[t].failed = 1;
                th[t].failed_at = 0;
                snprintf(th[t].err.msg, sizeof th[t].err.msg, "cannot start a thread");
                break;
            }
            started++;
        }
        for (size_t t = 0; used > 1 && t < started; t++)
            pthread_join(tid[t], NULL);
        /* the error of the earliest failing item, as the threaded run reports */
        const rank_thread *bad = NULL;
        for (size_t t = 0; t < used; t++)
            if (th[t].failed && (!bad || th[t].failed_at < bad->failed_at))
                bad = &th[t];
        size_t need = 1;
        for (int k = 0; k < n; k++)
            need += blk[k] ? strlen(blk[k]) : 0;
        if (!bad && !(out = malloc(need)))
            rc = 1;
        for (int k = 0; k < n; k++) {
            if (out && blk[k]) {
                size_t bl = strlen(blk[k]);
                memcpy(out + len, blk[k], bl);
                len += bl;
            }
            free(blk[k]);
            blk[k] = NULL;
        }
        if (out)
            out[len] = '\0';
        if (bad || rc) {
            send_error(bad ? bad->err.msg : "out of memory");
            rc = 1;
            break;
        }
    }
    free(out);
out:
    for (size_t t = 0; th && t < T; t++)
        bh_simulate_worker_free(th[t].wk);
    free(th);
    free(chunk);
    free(blk);
    free(tid);
    return rc;
}

/* Rank 0: hand out chunks, append results, stop everyone at the end. */
static int coordinator(bh_simulate_plan *plan, const bh_cli_sim *c, int nranks, size_t T)
{
    bh_error err;
    unsigned char *done = NULL;
    int rc = 0, failed_any = 0;
    char errmsg[BH_ERROR_MSG_MAX + 4200] = "";
    bh_status s = bh_simulate_prepare(plan, c->out, &done, &err);
    /* on failure the workers still need their stop message */
    size_t N = s == BH_OK ? bh_simulate_plan_size(plan) : 0;
    size_t K = c->opt.nshards > 1 ? c->opt.nshards : 1;
    size_t *todo = malloc((N ? N : 1) * sizeof *todo), ntodo = 0, next = 0, total = 0, ndone = 0;
    for (size_t w = 0; todo && w < N; w++) {
        if (K > 1 && w % K != c->opt.shard)
            continue;
        total++;
        if (done[w])
            ndone++;
        else
            todo[ntodo++] = w;
    }
    size_t ran = 0, before = ndone;
    char path[4096];
    snprintf(path, sizeof path, "%s/replications.csv", c->out);
    FILE *fp = s == BH_OK ? fopen(path, "a") : NULL;
    if (s == BH_OK && !fp) {
        snprintf(errmsg, sizeof errmsg, "%s: cannot append", path);
        failed_any = 1;
    } else if (s != BH_OK) {
        snprintf(errmsg, sizeof errmsg, "%s", err.msg);
        failed_any = 1;
    }
    double t0 = MPI_Wtime();
    int active = nranks - 1;
    size_t workers = (size_t)(nranks - 1);
    while (active > 0) {
        MPI_Status st;
        MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
        int len = 0;
        MPI_Get_count(&st, MPI_CHAR, &len);
        char *buf = malloc((size_t)len + 1);
        MPI_Recv(buf, len, MPI_CHAR, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (buf)
            buf[len] = '\0';
        if (st.MPI_TAG == TAG_ERROR) {
            if (!failed_any)
                snprintf(errmsg, sizeof errmsg, "rank %d: %s", st.MPI_SOURCE, buf ? buf : "?");
            failed_any = 1;
            active--;
            free(buf);
            continue;
        }
        if (len > 0 && fp && buf) {
            if (fwrite(buf, 1, (size_t)len, fp) != (size_t)len || fflush(fp) != 0) {
                snprintf(errmsg, sizeof errmsg, "%s: cannot append", path);
                failed_any = 1;
            }
            /* every block ends with one end line */
            for (char *q = strstr(buf, ",end,"); q; q = strstr(q + 1, ",end,"))
                ran++, ndone++;
            if (!c->quiet)
                fprintf(stderr, "simulate (MPI, %d ranks): %zu/%zu replications\n", nranks,
                        ndone, total);
        }
        free(buf);
        uint64_t chunk[MAX_CHUNK * MAX_RANK_THREADS];
        int n = 0;
        if (!failed_any && !*stop_slot() && next < ntodo) {
            /* about four chunks per worker thread left, at least one item
             * per thread of the rank */
            size_t left = ntodo - next, want = left / (4 * workers);
            if (want < T)
                want = T;
            if (want > MAX_CHUNK * T)
                want = MAX_CHUNK * T;
            for (; n < (int)want && next < ntodo; n++)
                chunk[n] = todo[next++];
        }
        MPI_Send(chunk, n, MPI_UINT64_T, st.MPI_SOURCE, TAG_WORK, MPI_COMM_WORLD);
        if (n == 0)
            active--;
    }
    double secs = MPI_Wtime() - t0;
    if (fp)
        fclose(fp);
    free(todo);
    free(done);
    if (failed_any) {
        fprintf(stderr, "blackhole-mpi simulate: %s\n", errmsg);
        return s != BH_OK ? bh_cli_exit_code(s) : BH_EXIT_OUTPUT;
    }
    bh_simulate_result *res = NULL;
    if ((s = bh_simulate_finish(c->out, &res, &err)) != BH_OK) {
        fprintf(stderr, "blackhole-mpi simulate: %s\n", err.msg);
        return bh_cli_exit_code(s);
    }
    printf("blackhole-mpi simulate: %d ranks, %zu of %zu replications complete (%zu run now in "
           "%.1f s, %.2f per second)\n", nranks, ndone, total, ran, secs,
           secs > 0 ? (double)ran / secs : 0.0);
    (void)before;
    if (ndone < total) {
        fprintf(stderr, "blackhole-mpi simulate: stopped; rerun with --resume to continue\n");
        rc = BH_EXIT_ESTIMATION;
    } else if (K == 1 && !c->quiet)
        bh_cli_sim_report(res, c->out);
    bh_simulate_result_free(res);
    return rc;
}

/* Threads per worker rank: --threads T when given (ranks usually fill the
 * cores already, so the default is one). */
static size_t rank_threads(const bh_cli_sim *c)
{
    size_t t = c->opt.threads ? c->opt.threads : 1;
    return t > MAX_RANK_THREADS ? MAX_RANK_THREADS : t;
}

int main(int argc, char **argv)
{
    /* only the main thread of a rank calls MPI */
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    gsl_set_error_handler_off();
    int rank = 0, nranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (argc < 2 || strcmp(argv[1], "simulate") != 0) {
        if (rank == 0)
            usage();
        MPI_Finalize();
        return BH_EXIT_USAGE;
    }
    bh_cli_sim c;
    bh_error err;
    int help = 0, rc = 0;
    bh_study *study = NULL;
    bh_simulate_plan *plan = NULL;
    /* every rank parses the same command line and builds the same plan */
    bh_status s = bh_cli_sim_parse(argc - 2, argv + 2, &c, &help, &err);
    if (s == BH_OK && (help || c.merge)) {
        if (rank == 0)
            usage();
        bh_cli_sim_free(&c);
        MPI_Finalize();
        return help ? BH_EXIT_OK : BH_EXIT_USAGE;
    }
    if (s == BH_OK)
        s = bh_study_read(c.study, &study, &err);
    if (s == BH_OK)
        s = bh_simulate_plan_new(study, c.study, &c.opt, &plan, &err);
    if (s != BH_OK) {
        /* all ranks see the same error; rank 0 reports it */
        if (rank == 0)
            rc = bh_cli_fail("simulate", &err);
        else
            rc = bh_cli_exit_code(s);
    } else if (nranks == 1) {
        bh_simulate_result *res = NULL;
        c.opt.stop = stop_slot();
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        s = bh_simulate_run(study, c.study, &c.opt, c.out, &res, &err);
        if (s != BH_OK)
            rc = bh_cli_fail("simulate", &err);
        else {
            printf("blackhole-mpi simulate: 1 rank, %zu of %zu replications complete\n",
                   res->done, res->total);
            if (res->nrows && !c.quiet)
                bh_cli_sim_report(res, c.out);
            rc = res->complete ? 0 : BH_EXIT_ESTIMATION;
        }
        bh_simulate_result_free(res);
    } else if (rank == 0) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        rc = coordinator(plan, &c, nranks, rank_threads(&c));
    } else {
        rc = worker(plan, rank_threads(&c));
    }
    bh_simulate_plan_free(plan);
    bh_study_free(study);
    bh_cli_sim_free(&c);
    MPI_Finalize();
    return rc;
}
