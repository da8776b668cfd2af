/* atomicfile.h - write an output file so it appears whole or not at all.
 *
 * bh_afile_open() creates a temporary file beside the destination; the
 * caller writes to af->fp; bh_afile_commit() flushes, fsyncs and renames
 * it over the destination; bh_afile_abort() removes it.  A path of "-"
 * writes straight to stdout (commit just flushes).
 */
#ifndef BH_ATOMICFILE_H
#define BH_ATOMICFILE_H

#include <stdio.h>
#include "blackhole/status.h"

typedef struct {
    FILE *fp;
    char *path;       /* destination */
    char *tmp;        /* temporary path; NULL for stdout (path NULL) and for a
                         non-regular destination such as /dev/null, which
                         is written in place (path set) */
} bh_afile;

bh_status bh_afile_open(bh_afile *af, const char *path, bh_error *err);
/* Commit: on any write, flush, sync or rename failure the temporary file
 * is removed and BH_EOUTPUT returned with the OS's reason. */
bh_status bh_afile_commit(bh_afile *af, bh_error *err);
void bh_afile_abort(bh_afile *af);

#endif
