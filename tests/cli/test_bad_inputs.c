/* test_bad_inputs.c - the bad-input catalogue (tests/bad-inputs/cases.tsv)
 * run through the program, and every fuzzer-found crash input
 * (tests/fuzz/crashes/<target>/) replayed through the fuzz target's code.
 *
 * Each catalogue case asserts: no crash (exit < 128) and no hang (timeout
 * 20 s), the documented exit code, a message fragment naming the problem,
 * an error reported on one line of stderr, and, when -o pointed into the
 * case's output directory, no new, partial or clobbered file after a
 * failure (and the file present after success).  The format of cases.tsv
 * is described in tests/bad-inputs/README.md.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blackhole/atomicfile.h"
#include "blackhole/csvread.h"
#include "blackhole/formula.h"
#include "testutil.h"
#include "../fuzz/fuzz_targets.h"

#define CATALOGUE "tests/bad-inputs/cases.tsv"
#define FILES_DIR "tests/bad-inputs/files"
#define CRASH_DIR "tests/fuzz/crashes"
#define CASE_TIMEOUT 20

/* ------------------------------------------------------------ helpers */

static void write_file(const char *dir, const char *name, const void *data, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    cr_assert(fp, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, n, fp), n);
    cr_assert_eq(fclose(fp), 0);
}

static void write_str(const char *dir, const char *name, const char *s)
{
    write_file(dir, name, s, strlen(s));
}

/* A growing string. */
typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        b->cap = 2 * (b->n + n + 1);
        b->s = realloc(b->s, b->cap);
        cr_assert(b->s);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

static void sb_repeat(sbuf *b, const char *s, size_t times)
{
    for (size_t i = 0; i < times; i++)
        sb_str(b, s);
}

/* Inputs that cannot live in the repository as plain files: NUL bytes,
 * binary garbage, non-UTF-8, a 10 MB field, 5000 columns, formulas of
 * up to 120 kB.  Generated deterministically into dir. */
static void generate_inputs(const char *dir)
{
    static const char nul[] = "y,x\n1,2\n2,\0\n3,4\n";
    write_file(dir, "nul.csv", nul, sizeof nul - 1);
    static const char nulh[] = "y,x\0z\n1,2\n";
    write_file(dir, "nul_header.csv", nulh, sizeof nulh - 1);
    write_str(dir, "latin1.csv", "y,g\n1,caf\xe9\n2,the\n");
    write_str(dir, "overlong.csv", "y,g\n1,\xc0\xaf\n2,ok\n");

    /* Binary garbage: a fixed linear congruential stream (with NULs). */
    unsigned char bin[4096];
    uint32_t st = 12345u;
    for (size_t i = 0; i < sizeof bin; i++) {
        st = st * 1103515245u + 12345u;
        bin[i] = (unsigned char)(st >> 16);
    }
    write_file(dir, "garbage.bin", bin, sizeof bin);

    /* 10 MB in one field: unquoted text in a numeric column, and quoted
     * text (with separators and newlines inside) in a text column. */
    size_t big = 10u << 20;
    char *f = malloc(big + 64);
    cr_assert(f);
    strcpy(f, "y,x\n1,");
    size_t k = strlen(f);
    memset(f + k, 'a', big);
    k += big;
    k += (size_t)sprintf(f + k, "\n2,3\n3,4\n");
    write_file(dir, "bigfield.csv", f, k);
    strcpy(f, "y,t\n1,\"");
    k = strlen(f);
    for (size_t i = 0; i < big; i++)
        f[k + i] = (i % 1000 == 999) ? '\n' : (i % 7 == 0 ? ',' : 'b');
    k += big;
    k += (size_t)sprintf(f + k, "\"\n2,x\n3,y\n");
    write_file(dir, "bigtext.csv", f, k);
    free(f);

    /* 5000 columns, 20 rows. */
    sbuf w = {0};
    sb_str(&w, "y");
    char cell[64];
    for (int j = 1; j < 5000; j++) {
        snprintf(cell, sizeof cell, ",c%d", j);
        sb_str(&w, cell);
    }
    sb_str(&w, "\n");
    for (int i = 0; i < 20; i++) {
        snprintf(cell, sizeof cell, "%d", (i * 7) % 11);
        sb_str(&w, cell);
        for (int j = 1; j < 5000; j++) {
            snprintf(cell, sizeof cell, ",%d", (i * j + j / 3) % 13);
            sb_str(&w, cell);
        }
        sb_str(&w, "\n");
    }
    write_file(dir, "wide.csv", w.s, w.n);
    free(w.s);

    /* Formulas. */
    sbuf b = {0};
    sb_str(&b, "y ~ (v1");
    for (int j = 2; j <= 20; j++) {
        snprintf(cell, sizeof cell, " + v%d", j);
        sb_str(&b, cell);
    }
    sb_str(&b, ")^20");
    write_file(dir, "explode.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ x");
    sb_repeat(&b, " + x", 3999);
    write_file(dir, "long_ok.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ x");
    sb_repeat(&b, "+x", 19999);
    write_file(dir, "long_bad.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ ");
    sb_repeat(&b, "(", 1000);
    sb_str(&b, "x");
    sb_repeat(&b, ")", 1000);
    write_file(dir, "deep_ok.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ ");
    sb_repeat(&b, "I(", 200);
    sb_str(&b, "x");
    sb_repeat(&b, ")", 200);
    write_file(dir, "deep_calls.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ ");
    sb_repeat(&b, "I(", 2000);
    sb_str(&b, "x");
    sb_repeat(&b, ")", 2000);
    write_file(dir, "deep_calls_bad.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ log(x");
    sb_repeat(&b, "^x", 4900);
    sb_str(&b, ")");
    write_file(dir, "deep_power.txt", b.s, b.n);
    b.n = 0;
    sb_repeat(&b, "-", 4900);
    sb_str(&b, "y ~ x");
    write_file(dir, "deep_lhs.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ ");
    sb_repeat(&b, "(", 60000);
    sb_str(&b, "x");
    sb_repeat(&b, ")", 60000);
    write_file(dir, "deep_bad.txt", b.s, b.n);
    b.n = 0;
    sb_str(&b, "y ~ x + ");
    sb_repeat(&b, "-", 60000);
    sb_str(&b, "z");
    write_file(dir, "deep_minus.txt", b.s, b.n);
    free(b.s);
}

/* Replace every occurrence of each placeholder key[i] by val[i]. */
static char *substitute(const char *s, const char *const *key, const char *const *val,
                        size_t nkey)
{
    sbuf b = {0};
    sb_str(&b, "");
    while (*s) {
        size_t i;
        for (i = 0; i < nkey; i++)
            if (strncmp(s, key[i], strlen(key[i])) == 0)
                break;
        if (i < nkey) {
            sb_str(&b, val[i]);
            s += strlen(key[i]);
        } else {
            sb_add(&b, s, 1);
            s++;
        }
    }
    return b.s;
}

/* The files of a directory (name + content) as one string, for comparing
 * a directory before and after a failed run. */
static char *dir_snapshot(const char *dir)
{
    sbuf b = {0};
    sb_str(&b, "");
    DIR *d = opendir(dir);
    if (!d)
        return b.s;
    char **names = NULL;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        names = realloc(names, (n + 1) * sizeof *names);
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    /* readdir order is arbitrary: sort. */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        sb_str(&b, names[i]);
        sb_str(&b, "=");
        char *c = bht_slurp(path);
        sb_str(&b, c ? c : "(unreadable)");
        sb_str(&b, "\n");
        free(c);
        free(names[i]);
    }
    free(names);
    return b.s;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++)
        n += *s == '\n';
    return n;
}

/* Environment for cases that need it: a read-only directory and a tiny
 * (16 kB) tmpfs standing in for a full disk.  Root ignores permission
 * bits, so as root both are tmpfs mounts; without mount rights the cases
 * are skipped with a message. */
typedef struct {
    int root;
    int have_ro, have_full;
    char ro[512], full[512];
    int ro_mounted, full_mounted;
} env;

static int sh(const char *fmt, const char *a)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, a);
    return bht_run(cmd, NULL, NULL);
}

static void env_setup(env *e, const char *tmp)
{
    memset(e, 0, sizeof *e);
    e->root = geteuid() == 0;
    snprintf(e->ro, sizeof e->ro, "%s/ro", tmp);
    snprintf(e->full, sizeof e->full, "%s/full", tmp);
    mkdir(e->ro, 0755);
    mkdir(e->full, 0755);
    if (e->root) {
        e->ro_mounted = sh("mount -t tmpfs -o ro,size=16k tmpfs '%s'", e->ro) == 0;
        e->have_ro = e->ro_mounted;
    } else {
        e->have_ro = chmod(e->ro, 0555) == 0;
    }
    e->full_mounted = sh("mount -t tmpfs -o size=16k tmpfs '%s'", e->full) == 0;
    e->have_full = e->full_mounted;
}

static void env_teardown(env *e)
{
    if (e->ro_mounted)
        sh("umount '%s'", e->ro);
    if (e->full_mounted)
        sh("umount '%s'", e->full);
}

/* --------------------------------------------------------- the catalogue */

typedef struct {
    char *name, *requires, *setup, *expect, *args;
    int exit;
    size_t line;
} bcase;

static size_t load_cases(bcase **out)
{
    char *text = bht_slurp(CATALOGUE);
    cr_assert(text, "cannot read %s", CATALOGUE);
    bcase *v = NULL;
    size_t n = 0, lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        char *field[6];
        size_t k = 0;
        char *p = line;
        field[k++] = p;
        while (k < 6 && (p = strchr(p, '\t'))) {
            *p++ = '\0';
            field[k++] = p;
        }
        cr_assert_eq(k, 6, "%s: line %zu has %zu fields, want 6", CATALOGUE, lineno, k);
        v = realloc(v, (n + 1) * sizeof *v);
        v[n] = (bcase){strdup(field[0]), strdup(field[1]), strdup(field[2]),
                       strdup(field[4]), strdup(field[5]), atoi(field[3]), lineno};
        n++;
    }
    free(text);
    *out = v;
    return n;
}

static void free_cases(bcase *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].requires);
        free(v[i].setup);
        free(v[i].expect);
        free(v[i].args);
    }
    free(v);
}

/* Run one case; returns 1 if it passed (failures are cr_expect'ed). */
static int run_case(const bcase *c, const char *tmp, const char *gen, const char *files,
                    const env *e, int *skipped)
{
    if ((!strcmp(c->requires, "mount") && !e->have_full) ||
        (!strcmp(c->requires, "readonly") && !e->have_ro) ||
        (!strcmp(c->requires, "nonroot") && e->root)) {
        fprintf(stderr, "bad-inputs: skipping %s (needs %s%s)\n", c->name, c->requires,
                !strcmp(c->requires, "nonroot") ? ": root ignores permissions"
                                                 : ": mount not permitted here");
        (*skipped)++;
        return 1;
    }
    char odir[4096];
    snprintf(odir, sizeof odir, "%s/out_%s", tmp, c->name);
    cr_assert_eq(mkdir(odir, 0755), 0, "mkdir %s", odir);
    const char *key[] = {"@FULL", "@RO", "@F", "@G", "@O"};
    const char *val[] = {e->full, e->ro, files, gen, odir};
    if (strcmp(c->setup, "-") != 0) {
        char *setup = substitute(c->setup, key, val, 5);
        char *cmd = malloc(strlen(setup) + strlen(odir) + 32);
        sprintf(cmd, "cd '%s' && %s", odir, setup);
        cr_assert_eq(bht_run(cmd, NULL, NULL), 0, "%s: setup failed: %s", c->name, setup);
        free(cmd);
        free(setup);
    }
    char *args = substitute(c->args, key, val, 5);
    char *before_o = dir_snapshot(odir);
    char *before_f = e->have_full ? dir_snapshot(e->full) : strdup("");
    size_t L = strlen(args) + strlen(odir) + strlen(bht_bin()) + 64;
    char *cmd = malloc(L);
    snprintf(cmd, L, "cd '%s' && timeout %d %s %s", odir, CASE_TIMEOUT, bht_bin(), args);
    char *out = NULL, *err = NULL;
    int rc = bht_run(cmd, &out, &err);
    int ok = 1;
#define EXPECT(cond, ...)                                                      \
    do {                                                                       \
        if (!(cond)) {                                                         \
            ok = 0;                                                            \
            cr_expect(0, __VA_ARGS__);                                         \
        }                                                                      \
    } while (0)
    const char *shown_err = err ? err : "";
    EXPECT(rc != 124, "%s (cases.tsv:%zu): hang (killed after %d s)", c->name, c->line,
           CASE_TIMEOUT);
    EXPECT(rc < 128, "%s (cases.tsv:%zu): crashed (exit %d): %.2000s", c->name, c->line, rc,
           shown_err);
    EXPECT(rc == c->exit, "%s (cases.tsv:%zu): exit %d, want %d; stderr: %.2000s", c->name,
           c->line, rc, c->exit, shown_err);
    if (strcmp(c->expect, "-") != 0) {
        int on_out = strncmp(c->expect, "out:", 4) == 0;
        const char *frag = c->expect + 4;
        const char *hay = on_out ? out : err;
        EXPECT(hay && strstr(hay, frag), "%s (cases.tsv:%zu): '%s' not in std%s: %.2000s",
               c->name, c->line, frag, on_out ? "out" : "err", hay ? hay : "(null)");
    }
    if (c->exit != 0) {
        /* One line, and short: a 10 MB field is quoted, not copied.
         * ("usage": the message is followed by the usage text.) */
        EXPECT((count_lines(err) == 1 || !strcmp(c->requires, "usage")) &&
                   strlen(shown_err) < 2048,
               "%s (cases.tsv:%zu): error should be one short line, got %zu lines, %zu "
               "bytes: %.2000s", c->name, c->line, count_lines(err), strlen(shown_err),
               shown_err);
        char *after_o = dir_snapshot(odir);
        EXPECT(!strcmp(before_o, after_o),
               "%s (cases.tsv:%zu): output directory changed by a failed run:\nbefore:\n%.500s"
               "\nafter:\n%.500s", c->name, c->line, before_o, after_o);
        free(after_o);
        if (e->have_full) {
            char *after_f = dir_snapshot(e->full);
            EXPECT(!strcmp(before_f, after_f),
                   "%s (cases.tsv:%zu): partial file left on the full disk: %.500s", c->name,
                   c->line, after_f);
            free(after_f);
        }
    } else {
        const char *o = strstr(c->args, "-o @O/");
        if (o) {
            char name[256], path[4600];
            sscanf(o + 6, "%255s", name);
            snprintf(path, sizeof path, "%s/%s", odir, name);
            struct stat sb;
            EXPECT(stat(path, &sb) == 0 && sb.st_size > 0,
                   "%s (cases.tsv:%zu): output file %s missing after success", c->name,
                   c->line, name);
        }
    }
#undef EXPECT
    free(before_o);
    free(before_f);
    free(cmd);
    free(args);
    free(out);
    free(err);
    return ok;
}

static char *abspath(const char *rel)
{
    char cwd[4096];
    cr_assert(getcwd(cwd, sizeof cwd));
    char *p = malloc(strlen(cwd) + strlen(rel) + 2);
    sprintf(p, "%s/%s", cwd, rel);
    return p;
}

Test(bad_inputs, catalogue, .timeout = 600)
{
    bcase *cases = NULL;
    size_t n = load_cases(&cases);
    cr_assert_geq(n, 60, "the catalogue should hold at least 60 cases, has %zu", n);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(cases[i].name, cases[j].name) != 0, "duplicate case %s",
                      cases[i].name);
    char *tmp = bht_tmpdir();
    char gen[4096];
    snprintf(gen, sizeof gen, "%s/gen", tmp);
    cr_assert_eq(mkdir(gen, 0755), 0);
    generate_inputs(gen);
    char *files = abspath(FILES_DIR);
    env e;
    env_setup(&e, tmp);
    size_t failed = 0;
    int skipped = 0;
    for (size_t i = 0; i < n; i++)
        if (!run_case(&cases[i], tmp, gen, files, &e, &skipped))
            failed++;
    env_teardown(&e);
    fprintf(stderr, "bad-inputs: %zu cases, %zu failed, %d skipped\n", n, failed,
            skipped);
    free(files);
    bht_rmtree(tmp);
    free(tmp);
    free_cases(cases, n);
}

/* ------------------------------------- library-level regression tests */

/* 100000 levels of nesting, in every shape the parser builds, through the
 * library (the program's argument length limit stops at ~65000): an error,
 * not a stack overflow.  Found by the catalogue; limits in formula.h. */
Test(bad_inputs, formula_depth_100000)
{
    static const char *const shape[][3] = {
        {"(", "x", ")"}, {"I(", "x", ")"}, {"-", "x", ""}, {"x+", "z", ""}, {"x^", "z", ""}};
    for (size_t k = 0; k < sizeof shape / sizeof shape[0]; k++) {
        sbuf b = {0};
        sb_str(&b, "y ~ ");
        sb_repeat(&b, shape[k][0], 100000);
        sb_str(&b, shape[k][1]);
        sb_repeat(&b, shape[k][2], 100000);
        bh_formula *f = NULL;
        bh_error err;
        bh_status st = bh_formula_parse(b.s, &f, &err);
        cr_expect_eq(st, BH_EFORMULA, "shape %zu: status %d", k, st);
        cr_expect(f == NULL);
        cr_expect(strstr(err.msg, "nested too deeply"), "shape %zu: %s", k, err.msg);
        bh_formula_free(f);
        free(b.s);
    }
}

/* (v1 + ... + v20)^20 would expand to 2^20 - 1 terms: refused quickly
 * (the fuzzer found the hang: tests/fuzz/crashes/formula). */
Test(bad_inputs, formula_term_limit, .timeout = 20)
{
    bh_formula *f = NULL;
    bh_error err;
    cr_assert_eq(bh_formula_parse("y ~ (a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q+r+s+t)^20", &f, &err),
                 BH_EFORMULA);
    cr_expect(strstr(err.msg, "more than 10000 terms"), "%s", err.msg);
    /* 2^11 - 1 = 2047 terms are still fine (intermediate products of
     * 1023 x 11 pairs collapse by deduplication). */
    cr_assert_eq(bh_formula_parse("y ~ (a+b+c+d+e+f+g+h+i+j+k)^11", &f, &err), BH_OK, "%s",
                 err.msg);
    cr_expect_eq(f->nterms, 2047);
    bh_formula_free(f);
}

/* -o /dev/null used to rename a temporary file over the device node (as
 * root: /dev/null became a regular file).  Non-regular destinations are
 * written in place; symbolic links keep pointing at the replaced file. */
Test(bad_inputs, atomic_output_special_files_and_links)
{
    bh_afile af;
    bh_error err;
    cr_assert_eq(bh_afile_open(&af, "/dev/null", &err), BH_OK, "%s", err.msg);
    fputs("discarded\n", af.fp);
    cr_assert_eq(bh_afile_commit(&af, &err), BH_OK, "%s", err.msg);
    struct stat sb;
    cr_assert_eq(stat("/dev/null", &sb), 0);
    cr_assert(S_ISCHR(sb.st_mode), "/dev/null is no longer a character device");

    cr_assert_eq(bh_afile_open(&af, "/dev/full", &err), BH_OK, "%s", err.msg);
    for (int i = 0; i < 10000; i++)
        fputs("0123456789", af.fp);
    cr_assert_eq(bh_afile_commit(&af, &err), BH_EOUTPUT);
    cr_expect(strstr(err.msg, "No space left"), "%s", err.msg);
    cr_assert_eq(stat("/dev/full", &sb), 0);
    cr_assert(S_ISCHR(sb.st_mode));

    char *tmp = bht_tmpdir();
    char real[600], link[600], sub[600], link2[600];
    snprintf(real, sizeof real, "%s/real.csv", tmp);
    snprintf(link, sizeof link, "%s/link.csv", tmp);
    snprintf(sub, sizeof sub, "%s/sub", tmp);
    snprintf(link2, sizeof link2, "%s/sub/rel.csv", tmp);
    write_str(tmp, "real.csv", "old\n");
    cr_assert_eq(symlink("real.csv", link), 0);
    cr_assert_eq(mkdir(sub, 0755), 0);
    cr_assert_eq(symlink("../link.csv", link2), 0);   /* relative, two hops */
    cr_assert_eq(bh_afile_open(&af, link2, &err), BH_OK, "%s", err.msg);
    fputs("new\n", af.fp);
    cr_assert_eq(bh_afile_commit(&af, &err), BH_OK, "%s", err.msg);
    cr_assert_eq(lstat(link, &sb), 0);
    cr_expect(S_ISLNK(sb.st_mode), "link.csv was replaced by a file");
    cr_assert_eq(lstat(link2, &sb), 0);
    cr_expect(S_ISLNK(sb.st_mode), "sub/rel.csv was replaced by a file");
    char *got = bht_slurp(real);
    cr_expect_str_eq(got, "new\n");
    free(got);

    /* A directory fails at open, before any work. */
    cr_assert_eq(bh_afile_open(&af, tmp, &err), BH_EOUTPUT);
    cr_expect(strstr(err.msg, "directory"), "%s", err.msg);
    bht_rmtree(tmp);
    free(tmp);
}

/* A byte order mark after blank lines (LF or CR-only) still belongs to the
 * header (fuzzer: tests/fuzz/crashes/csv/bom-after-*). */
Test(bad_inputs, csv_bom_after_blank_lines)
{
    static const char *const text[] = {"\n\xef\xbb\xbfy,x\n1,2\n",
                                       "\r\r\xef\xbb\xbfy,x\r1,2\r",
                                       "\xef\xbb\xbf\xef\xbb\xbfy,x\n1,2\n"};
    for (size_t k = 0; k < 3; k++) {
        FILE *in = fmemopen((void *)text[k], strlen(text[k]), "r");
        bh_frame *f = NULL;
        bh_error err;
        cr_assert_eq(bh_csv_read_stream(in, "bom.csv", NULL, &f, &err), BH_OK, "%zu: %s", k,
                     err.msg);
        fclose(in);
        cr_expect_str_eq(f->cols[0].name, "y", "case %zu", k);
        cr_expect_eq(f->nrow, 1);
        bh_frame_free(f);
    }
    static const char only[] = "\n\xef\xbb\xbf\n\n";
    FILE *in = fmemopen((void *)only, sizeof only - 1, "r");
    bh_frame *f = NULL;
    bh_error err;
    cr_expect_eq(bh_csv_read_stream(in, "bom.csv", NULL, &f, &err), BH_EINPUT);
    cr_expect(strstr(err.msg, "empty"), "%s", err.msg);
    fclose(in);
}

/* ------------------------------------------------- fuzzer crash replay */

static size_t replay_dir(const char *target, int (*fn)(const uint8_t *, size_t))
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", CRASH_DIR, target);
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *fp = fopen(path, "rb");
        cr_assert(fp, "cannot open %s", path);
        sbuf b = {0};
        char chunk[4096];
        size_t k;
        sb_str(&b, "");
        while ((k = fread(chunk, 1, sizeof chunk, fp)) > 0)
            sb_add(&b, chunk, k);
        fclose(fp);
        cr_expect_eq(fn((const uint8_t *)b.s, b.n), 0,
                     "%s: fails the fuzz target's checks (run with BH_FUZZ_VERBOSE=1)", path);
        free(b.s);
        n++;
    }
    closedir(d);
    return n;
}

/* A timeout found by the fuzzer would hang here again: time-limit it. */
Test(fuzz_crashes, csv, .timeout = 120) { replay_dir("csv", bh_fuzz_csv); }
Test(fuzz_crashes, formula, .timeout = 120) { replay_dir("formula", bh_fuzz_formula); }
Test(fuzz_crashes, fit, .timeout = 120) { replay_dir("fit", bh_fuzz_fit); }

/* The fuzz targets' code is compiled into this test binary (the Makefile
 * builds tests/unit and tests/cli only), so the replay runs exactly the
 * code libFuzzer ran. */
#include "../fuzz/fuzz_targets.c"
