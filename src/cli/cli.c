/* cli.c - option parsing and error reporting shared by all commands. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/csvread.h"
#include "blackhole/strutil.h"

int bh_cli_exit_code(bh_status s)
{
    switch (s) {
    case BH_OK:
        return BH_EXIT_OK;
    case BH_EUSAGE:
    case BH_EFORMULA:
        return BH_EXIT_USAGE;
    case BH_EINPUT:
    case BH_EDATA:
        return BH_EXIT_INPUT;
    case BH_EOUTPUT:
        return BH_EXIT_OUTPUT;
    case BH_ENOMEM:
    case BH_ENUMERIC:
    case BH_ENOCONV:
    case BH_EINTERNAL:
        return BH_EXIT_ESTIMATION;
    }
    return BH_EXIT_ESTIMATION;
}

int bh_cli_fail(const char *cmd, const bh_error *err)
{
    fprintf(stderr, "blackhole %s: %s\n", cmd,
            err->msg[0] ? err->msg : bh_status_name(err->status));
    return bh_cli_exit_code(err->status);
}

static long find_long(const bh_cli_option *opts, size_t n, const char *name, size_t len)
{
    for (size_t k = 0; k < n; k++)
        if (strlen(opts[k].name) == len && strncmp(opts[k].name, name, len) == 0)
            return (long)k;
    return -1;
}

static bh_status push_value(bh_cli_args *a, size_t k, char *v)
{
    char **nv = realloc(a->values[k], (a->count[k] + 1) * sizeof *nv);
    if (!nv)
        return BH_ENOMEM;
    a->values[k] = nv;
    nv[a->count[k]++] = v;
    return BH_OK;
}

bh_status bh_cli_parse(int argc, char **argv, const bh_cli_option *opts, size_t nopts,
                       bh_cli_args *out, int *help, bh_error *err)
{
    memset(out, 0, sizeof *out);
    *help = 0;
    out->opts = opts;
    out->nopts = nopts;
    out->values = calloc(nopts ? nopts : 1, sizeof *out->values);
    out->count = calloc(nopts ? nopts : 1, sizeof *out->count);
    out->pos = calloc((size_t)argc + 1, sizeof *out->pos);
    if (!out->values || !out->count || !out->pos)
        return bh_error_set(err, BH_ENOMEM, "out of memory");
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || strcmp(a, "-") == 0) {
            out->pos[out->npos++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            *help = 1;
            return BH_OK;
        }
        long k = -1;
        char *inline_val = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            k = find_long(opts, nopts, name, len);
            if (eq)
                inline_val = (char *)eq + 1;
            if (k < 0) {
                char want[128];
                snprintf(want, sizeof want, "%.*s", (int)(len < 100 ? len : 100), name);
                const char **names = malloc(nopts * sizeof *names);
                const char *sug = NULL;
                if (names) {
                    for (size_t j = 0; j < nopts; j++)
                        names[j] = opts[j].name;
                    sug = bh_suggest(want, names, nopts);
                }
                bh_status s = sug ? bh_error_set(err, BH_EUSAGE,
                                                 "unknown option '--%s' (did you mean '--%s'?)",
                                                 want, sug)
                                  : bh_error_set(err, BH_EUSAGE, "unknown option '--%s'", want);
                free(names);
                return s;
            }
        } else {
            for (size_t j = 0; j < nopts; j++)
                if (opts[j].short_name && opts[j].short_name == a[1])
                    k = (long)j;
            if (k < 0)
                return bh_error_set(err, BH_EUSAGE, "unknown option '%s'", a);
            if (a[2])
                inline_val = a + 2;
        }
        const bh_cli_option *o = &opts[k];
        char *val;
        if (o->has_arg) {
            if (inline_val)
                val = inline_val;
            else if (i + 1 < argc)
                val = argv[++i];
            else
                return bh_error_set(err, BH_EUSAGE, "option '--%s' needs a value (%s)",
                                    o->name, o->arg_name ? o->arg_name : "VALUE");
        } else {
            if (inline_val)
                return bh_error_set(err, BH_EUSAGE, "option '--%s' takes no value", o->name);
            val = "1";
        }
        if (push_value(out, (size_t)k, val) != BH_OK)
            return bh_error_set(err, BH_ENOMEM, "out of memory");
    }
    return BH_OK;
}

void bh_cli_args_free(bh_cli_args *a)
{
    if (!a)
        return;
    if (a->values)
        for (size_t k = 0; k < a->nopts; k++)
            free(a->values[k]);
    free(a->values);
    free(a->count);
    free(a->pos);
    memset(a, 0, sizeof *a);
}

static long opt_index(const bh_cli_args *a, const char *name)
{
    return find_long(a->opts, a->nopts, name, strlen(name));
}

const char *bh_cli_get(const bh_cli_args *a, const char *name)
{
    long k = opt_index(a, name);
    if (k < 0 || a->count[k] == 0)
        return NULL;
    return a->values[k][a->count[k] - 1];
}

char **bh_cli_all(const bh_cli_args *a, const char *name, size_t *count)
{
    long k = opt_index(a, name);
    *count = k < 0 ? 0 : a->count[k];
    return k < 0 ? NULL : a->values[k];
}

int bh_cli_flag(const bh_cli_args *a, const char *name)
{
    long k = opt_index(a, name);
    return k >= 0 && a->count[k] > 0;
}

void bh_cli_print_options(const bh_cli_option *opts, size_t nopts)
{
    for (size_t k = 0; k < nopts; k++) {
        char left[64];
        if (opts[k].short_name)
            snprintf(left, sizeof left, "-%c, --%s%s%s", opts[k].short_name, opts[k].name,
                     opts[k].has_arg ? " " : "", opts[k].has_arg ? opts[k].arg_name : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", opts[k].name,
                     opts[k].has_arg ? " " : "", opts[k].has_arg ? opts[k].arg_name : "");
        printf("  %-28s %s\n", left, opts[k].help);
    }
}

bh_status bh_cli_sep(const char *s, char *sep, bh_error *err)
{
    if (strcmp(s, "tab") == 0 || strcmp(s, "\\t") == 0 || strcmp(s, "\t") == 0) {
        *sep = '\t';
        return BH_OK;
    }
    if (strlen(s) == 1 && s[0] != '"' && s[0] != '\n' && s[0] != '\r') {
        *sep = s[0];
        return BH_OK;
    }
    return bh_error_set(err, BH_EUSAGE,
                        "separator must be one character (e.g. ',', ';' or 'tab'), not '%s'", s);
}

char **bh_cli_split(const char *s, char delim, size_t *n)
{
    *n = 0;
    size_t cap = 1;
    for (const char *c = s; *c; c++)
        cap += *c == delim;
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return NULL;
    const char *start = s;
    for (;;) {
        const char *e = strchr(start, delim);
        size_t len = e ? (size_t)(e - start) : strlen(start);
        /* trim blanks around items: "a, b" is "a","b" */
        while (len && (*start == ' ' || *start == '\t')) {
            start++;
            len--;
        }
        while (len && (start[len - 1] == ' ' || start[len - 1] == '\t'))
            len--;
        char *item = malloc(len + 1);
        if (!item) {
            bh_cli_free_list(v, *n);
            return NULL;
        }
        memcpy(item, start, len);
        item[len] = '\0';
        v[(*n)++] = item;
        if (!e)
            break;
        start = e + 1;
    }
    return v;
}

void bh_cli_free_list(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

bh_status bh_cli_read_data(const char *path, const bh_cli_args *a, bh_frame **out,
                           bh_error *err)
{
    bh_csv_options copt;
    bh_csv_default_options(&copt);
    const char *sep = bh_cli_get(a, "sep");
    if (sep) {
        bh_status s = bh_cli_sep(sep, &copt.sep, err);
        if (s != BH_OK)
            return s;
    }
    size_t nna = 0;
    char **na = bh_cli_all(a, "na", &nna);
    copt.na = (const char *const *)na;
    copt.n_na = nna;
    /* --threads, where the command has it, also bounds the reader */
    const char *th = bh_cli_get(a, "threads");
    if (th)
        copt.threads = (unsigned)strtoul(th, NULL, 10);
    return bh_csv_read_path(path, &copt, out, err);
}

bh_status bh_cli_single_spec(const bh_cli_args *a, const char *formula, bh_model_spec *sp,
                             bh_error *err)
{
    bh_status s = bh_cli_model_spec(a, sp, err);
    if (s != BH_OK)
        return s;
    sp->formula = formula;
    sp->name = "(1)";
    sp->trace = bh_cli_flag(a, "trace") ? bh_cli_trace_iter : NULL;
    sp->trace_ctx = (void *)sp->name;
    return BH_OK;
}
