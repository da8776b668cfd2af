/* cmd_plot.c - `blackhole plot KIND INPUT... -o chart.gp [--render png]`:
 * read result CSVs (or fit a model), build a chart, write its gnuplot
 * script atomically, optionally render it with gnuplot. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blackhole/atomicfile.h"
#include "blackhole/csvread.h"
#include "blackhole/model.h"
#include "blackhole/plot.h"
#include "blackhole/render.h"
#include "cli.h"

static const bh_cli_option plot_options[] = {
    {"output", 'o', 1, "FILE", "write the gnuplot script to FILE (atomically; default stdout)"},
    {"render", 0, 1, "FMT", "also run gnuplot: png, svg or pdf (image beside the script)"},
    {"image", 0, 1, "FILE", "image path for --render (default: the script name, new extension)"},
    {"width", 0, 1, "W", "width in pixels (default 900; pdf: 150 px per inch)"},
    {"height", 0, 1, "H", "height in pixels (default 600)"},
    {"title", 0, 1, "T", "chart title ('' for none; default: automatic)"},
    {"caption", 0, 1, "C", "note under the chart ('' for none; default: model, vcov, bands)"},
    {"labels", 0, 1, "CSV", "codebook with columns column,label[,unit]: axis labels"},
    {"vcov-label", 0, 1, "V", "covariance to name in the note (CSV inputs do not record it)"},
    {"model", 'm', 1, "M", "margins: model name to draw; diagnostics: the model formula"},
    {"x", 0, 1, "VAR", "interaction: the x-axis variable of 'at' (default: the first)"},
    {"omit", 0, 1, "PAT", "coef: leave out terms containing PAT, or starting with P for ^P "
                          "(repeatable)"},
    {"vars", 0, 1, "a,b", "describe: numeric variables (default: all numeric columns)"},
    {"bins", 0, 1, "N", "histogram bins (default: Freedman-Diaconis)"},
    BH_CLI_MODEL_OPTIONS,
    BH_CLI_DATA_OPTIONS,
};
#define NOPT (sizeof plot_options / sizeof plot_options[0])

static void plot_help(void)
{
    printf("usage: blackhole plot KIND INPUT... [-o chart.gp] [--render png|svg|pdf] [options]\n\n"
           "Write a publication chart as a self-contained gnuplot script (theme and data\n"
           "inlined; edit it by hand and run `gnuplot chart.gp`), and with --render run\n"
           "gnuplot to make the image.\n\n"
           "Kinds and inputs:\n"
           "  interaction MARGINS.csv   predictions against x, one line per moderator value\n"
           "                            (prediction rows, at = \"x=..;m=..\"), confidence bands\n"
           "  slopes MARGINS.csv        conditional effect across the moderator (slope rows),\n"
           "                            zero line, Johnson-Neyman boundaries (jn rows)\n"
           "  coef FIT.csv...           coefficient (forest) plot, models dodged; --omit\n"
           "  describe DATA.csv         histograms (--vars) and a correlation heat map\n"
           "  sim SIM.csv               power curves (columns %s)\n"
           "                            or sampling distributions (%s)\n"
           "  diagnostics DATA.csv -m FORMULA [model options]\n"
           "                            binned residuals (binomial), residuals vs fitted and\n"
           "                            normal Q-Q (least squares)\n\n"
           "Options:\n",
           BH_PLOT_SIM_POWER_COLUMNS, BH_PLOT_SIM_SAMPLING_COLUMNS);
    bh_cli_print_options(plot_options, NOPT);
    printf("\nWithout gnuplot on PATH the script is still written and a notice printed.\n"
           "\nExit codes: 0 success, 1 estimation failed, 2 usage error, 3 input/data error,\n"
           "4 output error (script or image cannot be written, gnuplot failed).\n");
}

/* "dir/chart.gp" -> "dir/chart.<ext>" (extension replaced or appended). */
static char *swap_ext(const char *path, const char *ext)
{
    size_t n = strlen(path);
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash) && dot != path && (!slash || dot > slash + 1))
        n = (size_t)(dot - path);
    char *r = malloc(n + strlen(ext) + 2);
    if (r)
        sprintf(r, "%.*s.%s", (int)n, path, ext);
    return r;
}

static bh_status read_csv(const char *path, const bh_cli_args *a, bh_frame **out, bh_error *err)
{
    return bh_cli_read_data(path, a, out, err);
}

int bh_cmd_plot(int argc, char **argv)
{
    bh_error err;
    bh_error_clear(&err);
    bh_cli_args args;
    int help = 0, rc = BH_EXIT_OK;
    bh_frame **inputs = NULL, *codebook = NULL;
    size_t ninputs = 0;
    bh_plot_labels *labels = NULL;
    bh_chart *chart = NULL;
    bh_model *model = NULL;
    char *image = NULL, *gnuplot = NULL, **vars = NULL;
    size_t nvars = 0;

    bh_status s = bh_cli_parse(argc, argv, plot_options, NOPT, &args, &help, &err);
    if (s == BH_OK && help) {
        plot_help();
        bh_cli_args_free(&args);
        return BH_EXIT_OK;
    }
    if (s != BH_OK)
        goto fail;
    if (args.npos < 1) {
        s = bh_error_set(&err, BH_EUSAGE, "missing chart KIND (interaction, slopes, coef, "
                                          "describe, sim, diagnostics)");
        goto fail;
    }
    bh_plot_kind kind;
    if ((s = bh_plot_kind_parse(args.pos[0], &kind, &err)) != BH_OK)
        goto fail;
    size_t nin = args.npos - 1;
    if (nin == 0 || (kind != BH_PLOT_COEF && nin != 1)) {
        s = bh_error_set(&err, BH_EUSAGE, "plot %s takes %s input CSV file, got %zu",
                         args.pos[0], kind == BH_PLOT_COEF ? "at least one" : "one", nin);
        goto fail;
    }

    bh_plot_options opt;
    bh_plot_default_options(&opt);
    const char *v;
    double d;
    int have_render = 0;
    bh_render_format fmt = BH_RENDER_PNG;
    if ((v = bh_cli_get(&args, "render"))) {
        if ((s = bh_render_format_parse(v, &fmt, &err)) != BH_OK)
            goto fail;
        have_render = 1;
    }
    if ((v = bh_cli_get(&args, "width"))) {
        if ((s = bh_cli_number("width", v, 100, 10000, &d, &err)) != BH_OK)
            goto fail;
        opt.width = (size_t)d;
    }
    if ((v = bh_cli_get(&args, "height"))) {
        if ((s = bh_cli_number("height", v, 100, 10000, &d, &err)) != BH_OK)
            goto fail;
        opt.height = (size_t)d;
    }
    if ((v = bh_cli_get(&args, "bins"))) {
        if ((s = bh_cli_number("bins", v, 1, 500, &d, &err)) != BH_OK)
            goto fail;
        opt.bins = (size_t)d;
    }
    opt.title = bh_cli_get(&args, "title");
    opt.caption = bh_cli_get(&args, "caption");
    opt.vcov_label = bh_cli_get(&args, "vcov-label");
    opt.x = bh_cli_get(&args, "x");
    opt.omit = (const char *const *)bh_cli_all(&args, "omit", &opt.nomit);
    if (kind != BH_PLOT_DIAGNOSTICS)
        opt.model = bh_cli_get(&args, "model");
    if ((v = bh_cli_get(&args, "vars"))) {
        if (!(vars = bh_cli_split(v, ',', &nvars))) {
            s = bh_error_set(&err, BH_ENOMEM, "out of memory");
            goto fail;
        }
        opt.vars = (const char *const *)vars;
        opt.nvars = nvars;
    }
    opt.terminal = bh_render_terminal(fmt);

    const char *outpath = bh_cli_get(&args, "output");
    if (outpath && strcmp(outpath, "-") == 0)
        outpath = NULL;
    if ((v = bh_cli_get(&args, "image")))
        image = strdup(v);
    else if (outpath)
        image = swap_ext(outpath, bh_render_extension(fmt));
    else if (have_render) {
        s = bh_error_set(&err, BH_EUSAGE, "--render needs -o chart.gp (or --image FILE)");
        goto fail;
    }
    opt.output = image ? image : "chart.png";

    if ((v = bh_cli_get(&args, "labels"))) {
        bh_csv_options copt;
        bh_csv_default_options(&copt);
        if ((s = bh_csv_read_path(v, &copt, &codebook, &err)) != BH_OK ||
            (s = bh_plot_labels_from_frame(codebook, v, &labels, &err)) != BH_OK)
            goto fail;
        opt.labels = labels;
    }

    if (!(inputs = calloc(nin, sizeof *inputs))) {
        s = bh_error_set(&err, BH_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t k = 0; k < nin; k++, ninputs++)
        if ((s = read_csv(args.pos[k + 1], &args, &inputs[k], &err)) != BH_OK)
            goto fail;

    switch (kind) {
    case BH_PLOT_INTERACTION:
        s = bh_plot_interaction(inputs[0], &opt, &chart, &err);
        break;
    case BH_PLOT_SLOPES:
        s = bh_plot_slopes(inputs[0], &opt, &chart, &err);
        break;
    case BH_PLOT_COEF:
        s = bh_plot_coef((const bh_frame *const *)inputs, nin, &opt, &chart, &err);
        break;
    case BH_PLOT_DESCRIBE:
        s = bh_plot_describe(inputs[0], &opt, &chart, &err);
        break;
    case BH_PLOT_SIM:
        s = bh_plot_sim(inputs[0], &opt, &chart, &err);
        break;
    case BH_PLOT_DIAGNOSTICS: {
        size_t nmod = 0;
        char **formulas = bh_cli_all(&args, "model", &nmod);
        if (nmod != 1) {
            s = bh_error_set(&err, BH_EUSAGE, "plot diagnostics takes one -m FORMULA (got %zu)",
                             nmod);
            break;
        }
        bh_model_spec spec;
        if ((s = bh_cli_single_spec(&args, formulas[0], &spec, &err)) != BH_OK)
            break;
        if ((s = bh_model_fit(inputs[0], &spec, &model, &err)) != BH_OK)
            break;
        if (!model->fit->converged) {
            s = bh_error_set(&err, BH_ENOCONV,
                             "the model did not converge after %zu iterations; no chart",
                             model->fit->iterations);
            break;
        }
        s = bh_plot_diagnostics(model, &opt, &chart, &err);
        break;
    }
    }
    if (s != BH_OK)
        goto fail;

    bh_afile af;
    if ((s = bh_afile_open(&af, outpath ? outpath : "-", &err)) != BH_OK)
        goto fail;
    if ((s = bh_chart_write(chart, af.fp, &err)) != BH_OK) {
        bh_afile_abort(&af);
        goto fail;
    }
    if ((s = bh_afile_commit(&af, &err)) != BH_OK)
        goto fail;

    if (have_render) {
        gnuplot = bh_render_find("gnuplot", NULL);
        if (!gnuplot) {
            fprintf(stderr, "blackhole plot: gnuplot not found on PATH: wrote %s but no image "
                            "(install gnuplot, then run: gnuplot %s)\n", outpath, outpath);
            goto done;
        }
        if ((s = bh_render_run(gnuplot, outpath, fmt, opt.width, opt.height, image, &err)) !=
            BH_OK)
            goto fail;
    }
    goto done;

fail:
    rc = bh_cli_fail("plot", &err);
done:
    for (size_t k = 0; k < ninputs; k++)
        bh_frame_free(inputs[k]);
    free(inputs);
    bh_chart_free(chart);
    bh_model_free(model);
    bh_plot_labels_free(labels);
    bh_frame_free(codebook);
    bh_cli_free_list(vars, nvars);
    free(image);
    free(gnuplot);
    bh_cli_args_free(&args);
    return rc;
}
