/* render.h - run gnuplot on a chart script to produce an image.
 *
 * The one place where libblackhole starts a program.  gnuplot is started
 * with posix_spawn (no shell: arguments are passed as they are), its
 * standard error is captured, and the image is written to a temporary
 * file beside the destination that is renamed over it only when gnuplot
 * succeeded: a failure never leaves a partial image.
 *
 * The script chooses its terminal from gnuplot variables, which the
 * renderer sets with -e before the script: bh_term ('pngcairo', 'svg',
 * 'pdfcairo'), bh_output (the image path), bh_width, bh_height.
 */
#ifndef BH_RENDER_H
#define BH_RENDER_H

#include <stddef.h>
#include "blackhole/status.h"

typedef enum { BH_RENDER_PNG = 0, BH_RENDER_SVG, BH_RENDER_PDF } bh_render_format;

/* Parse "png", "svg", "pdf". */
bh_status bh_render_format_parse(const char *s, bh_render_format *out, bh_error *err);
/* gnuplot terminal name ("pngcairo", "svg", "pdfcairo") and file extension. */
const char *bh_render_terminal(bh_render_format f);
const char *bh_render_extension(bh_render_format f);

/* Find `program` (e.g. "gnuplot") in the directories of `path` (a PATH
 * value; NULL = getenv("PATH")); a name containing '/' is used as is when
 * executable.  Returns a malloc'ed path, or NULL when not found. */
char *bh_render_find(const char *program, const char *path);

/* Run `gnuplot` (a path from bh_render_find) on `script` and write the
 * image to `image` (width x height pixels; pdf: 150 px per inch).  BH_EOUTPUT
 * when the temporary file cannot be created, gnuplot cannot be started,
 * fails (its standard error is quoted in the message), or writes nothing;
 * the temporary file is removed in every failure. */
bh_status bh_render_run(const char *gnuplot, const char *script, bh_render_format fmt,
                        size_t width, size_t height, const char *image, bh_error *err);

#endif
