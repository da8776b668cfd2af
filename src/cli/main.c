/* main.c - `blackhole COMMAND ...`: dispatch to one command per file. */
#include <gsl/gsl_errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef BH_VERSION
#define BH_VERSION "0.1.0"
#endif

static const bh_cli_command commands[] = {
    {"describe", "descriptive statistics, correlations and scale reliabilities", bh_cmd_describe},
    {"fit", "fit regression models and print coefficient tables", bh_cmd_fit},
    {"predict", "fitted values with standard errors on new data", bh_cmd_predict},
    {"replicate", "run a study spec end to end: tables, figures, scorecard, report", bh_cmd_replicate},
    {"generate", "synthetic data sets from a study spec's data-generating process", bh_cmd_generate},
    {"plot", "publication charts as gnuplot scripts (and images with --render)", bh_cmd_plot},
    {"margins", "marginal effects, simple slopes, Johnson-Neyman, interaction effects", bh_cmd_margins},
    {"simulate", "Monte Carlo power and parameter recovery from a study spec's DGP", bh_cmd_simulate},
    {"policy", "compare lead-allocation policies with a fitted follow-up model", bh_cmd_policy},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out)
{
    fprintf(out,
            "usage: blackhole COMMAND [ARGS]\n"
            "\n"
            "Regression toolkit replicating \"The Sales Lead Black Hole\" "
            "(Sabnis et al., 2013).\n\nCommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\nRun 'blackhole COMMAND --help' for a command's options.\n"
            "\nExit codes:\n"
            "  0  success\n"
            "  1  estimation failed or did not converge\n"
            "  2  usage error (bad option, formula or specification)\n"
            "  3  input or data error (unreadable file, malformed or unusable data)\n"
            "  4  output error (cannot write an output file)\n");
}

/* OpenBLAS's own API (the BLAS under GSL). */
void openblas_set_num_threads(int n);

int main(int argc, char **argv)
{
    /* GSL's default handler aborts; every status is checked instead. */
    gsl_set_error_handler_off();
    /* One BLAS thread unless the user asks otherwise: the matrices here are
     * tall and thin, where BLAS threads mostly spin, and a fixed thread
     * count makes results identical to the last bit on every machine.
     * The program parallelises where it pays (bootstrap, simulate). */
    if (!getenv("OPENBLAS_NUM_THREADS")) {
        /* OpenBLAS reads its thread count when it is loaded, before main:
         * its workers then spin for ~0.1 s of CPU at start-up even when
         * never used.  Starting again with the variable set avoids them
         * (one exec); if that fails, one thread is still set below. */
        char self[4096];
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        if (len > 0 && (size_t)len < sizeof self - 1 &&
            setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0) {
            self[len] = '\0';
            execv(self, argv);
        }
        openblas_set_num_threads(1);
    }
    if (argc < 2) {
        usage(stderr);
        return BH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return BH_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("blackhole %s\n", BH_VERSION);
        return BH_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 2, argv + 2);
    fprintf(stderr, "blackhole: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return BH_EXIT_USAGE;
}
