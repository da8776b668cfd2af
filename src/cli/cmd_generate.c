/* cmd_generate.c - `blackhole generate`: synthetic data sets from a study
 * spec's data-generating process (generate.h). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/generate.h"
#include "blackhole/study.h"
#include "cli.h"

static const bh_cli_option generate_options[] = {
    {"study", 0, 1, "FILE", "study spec (INI) with [dgp] sections (required)"},
    {"out", 0, 1, "DIR", "directory for the reps, leads and codebook files (required)"},
    {"seed", 0, 1, "S", "unsigned 64-bit seed (default: the spec's [study] seed)"},
    {"index", 0, 1, "I", "replication index: the stream (seed, I) (default 0)"},
    {"n-reps", 0, 1, "N", "number of units (default: the spec's [dgp] n)"},
    {"effect-scale", 0, 1, "F", "multiply every assumed effect by F (default 1)"},
};
#define NOPT (sizeof generate_options / sizeof generate_options[0])

static void generate_help(void)
{
    printf("usage: blackhole generate --study SPEC --out DIR [--seed S] [--index I]\n"
           "                          [--n-reps N] [--effect-scale F]\n\n"
           "Synthetic data from the study's data-generating process ([dgp] sections of\n"
           "SPEC; every number there is an assumption).  Writes, under the base names of\n"
           "the spec's [study] reps, leads and codebook paths, the unit file, the lead\n"
           "file and the codebook into DIR.  All files are written to temporaries and\n"
           "renamed only when all were written.  The same command gives the same bytes.\n\n"
           "Options:\n");
    bh_cli_print_options(generate_options, NOPT);
    printf("\nExit codes: 0 success, 2 usage or spec error, 3 input error, 4 output error.\n");
}

static bh_status parse_u64(const char *name, const char *s, uint64_t *out, bh_error *err)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno == ERANGE || s[0] == '-')
        return bh_error_set(err, BH_EUSAGE,
                            "--%s must be an unsigned 64-bit integer, not '%s'", name, s);
    *out = (uint64_t)v;
    return BH_OK;
}

/* sep, then DIR/base name of path (what bh_generate_write wrote). */
static void put_written(const char *dir, const char *path, const char *sep)
{
    const char *base = strrchr(path, '/');
    size_t dl = strlen(dir);
    printf("%s%s%s%s", sep, dir, dl && dir[dl - 1] == '/' ? "" : "/", base ? base + 1 : path);
}

int bh_cmd_generate(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_study *study = NULL;
    bh_status s = bh_cli_parse(argc, argv, generate_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        generate_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    if (args.npos != 0) {
        s = bh_error_set(&err, BH_EUSAGE, "unexpected argument '%s' (see --help)", args.pos[0]);
        goto fail;
    }
    const char *spec = bh_cli_get(&args, "study"), *out = bh_cli_get(&args, "out");
    if (!spec || !out) {
        s = bh_error_set(&err, BH_EUSAGE, "--study SPEC and --out DIR are required");
        goto fail;
    }
    bh_generate_options o;
    bh_generate_default_options(&o);
    const char *v;
    if ((v = bh_cli_get(&args, "seed"))) {
        if ((s = parse_u64("seed", v, &o.seed, &err)) != BH_OK)
            goto fail;
        o.seed_set = 1;
    }
    if ((v = bh_cli_get(&args, "index")) && (s = parse_u64("index", v, &o.index, &err)) != BH_OK)
        goto fail;
    double x;
    if ((v = bh_cli_get(&args, "n-reps"))) {
        if ((s = bh_cli_number("n-reps", v, 1, 1e7, &x, &err)) != BH_OK)
            goto fail;
        if (x != (double)(size_t)x) {
            s = bh_error_set(&err, BH_EUSAGE, "--n-reps must be a whole number, not '%s'", v);
            goto fail;
        }
        o.n_reps = (size_t)x;
    }
    if ((v = bh_cli_get(&args, "effect-scale")) &&
        (s = bh_cli_number("effect-scale", v, -1e6, 1e6, &o.effect_scale, &err)) != BH_OK)
        goto fail;
    if ((s = bh_study_read(spec, &study, &err)) != BH_OK)
        goto fail;
    if ((s = bh_generate_write(study, &o, out, &err)) != BH_OK)
        goto fail;
    printf("blackhole generate: study %s, seed %llu, index %llu, %zu units, effect scale %g\n",
           study->name, (unsigned long long)(o.seed_set ? o.seed : study->seed),
           (unsigned long long)o.index, o.n_reps ? o.n_reps : study->dgp.n, o.effect_scale);
    /* the files as written: DIR and the spec's base names */
    printf("wrote ");
    put_written(out, study->reps, "");
    if (study->leads && study->dgp.leads_count)
        put_written(out, study->leads, ", ");
    if (study->codebook)
        put_written(out, study->codebook, ", ");
    printf("\n");
    goto done;
fail:
    rc = bh_cli_fail("generate", &err);
done:
    bh_study_free(study);
    bh_cli_args_free(&args);
    return rc;
}
