/* csv_read_driver.c - read a CSV file with bh_csv_read_path and print its
 * shape; used by bench/csv_memory.sh and case 7 to time the reader and
 * measure its peak memory.
 * Usage: csv_read_driver FILE [THREADS [BLOCK_BYTES]]
 * (defaults: the library's, i.e. the online CPUs and 4 MB blocks;
 * THREADS 1 is the one-thread streaming reader). */
#include <stdio.h>
#include <stdlib.h>

#include "blackhole/csvread.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s FILE [THREADS [BLOCK_BYTES]]\n", argv[0]);
        return 2;
    }
    bh_csv_options opt;
    bh_csv_default_options(&opt);
    if (argc > 2)
        opt.threads = (unsigned)strtoul(argv[2], NULL, 10);
    if (argc > 3)
        opt.block_bytes = (size_t)strtoull(argv[3], NULL, 10);
    bh_frame *f = NULL;
    bh_error err;
    bh_error_clear(&err);
    if (bh_csv_read_path(argv[1], &opt, &f, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    size_t nnum = 0;
    for (size_t j = 0; j < f->ncol; j++)
        nnum += f->cols[j].type == BH_COL_NUMERIC;
    printf("%zu rows, %zu columns (%zu numeric)\n", f->nrow, f->ncol, nnum);
    bh_frame_free(f);
    return 0;
}
