/* status.h - the one status enum and error record of libblackhole.
 *
 * Every fallible function returns a bh_status and, when given a non-NULL
 * bh_error, fills it with a message that names the file, line, column,
 * variable or value at fault.  All errors pass through bh_error_at(), so one
 * breakpoint catches them all.  The library never prints and never exits;
 * the CLI maps statuses to exit codes.
 *
 * Programs using the library must call gsl_set_error_handler_off() once
 * at start-up (GSL's default handler aborts); the library checks every GSL
 * status and turns failures into bh_status values.
 */
#ifndef BH_STATUS_H
#define BH_STATUS_H

#include <stddef.h>

typedef enum {
    BH_OK = 0,
    BH_EUSAGE,    /* bad option, argument or model specification        */
    BH_EFORMULA,  /* formula syntax error or unknown variable            */
    BH_EINPUT,    /* unreadable or malformed input file                  */
    BH_EDATA,     /* data unsuitable for the model (no rows, bad values) */
    BH_ENOMEM,    /* allocation failed                                   */
    BH_ENUMERIC,  /* numerical failure during estimation                 */
    BH_ENOCONV,   /* iterative estimation did not converge               */
    BH_EOUTPUT,   /* cannot write an output file                         */
    BH_EINTERNAL  /* a bug: an invariant does not hold                   */
} bh_status;

#define BH_ERROR_MSG_MAX 1024

typedef struct {
    bh_status status;
    /* Location of the fault when known (0 = unknown).  The same facts are
     * also spelled out at the start of msg ("file:line:col: ..."). */
    size_t line;
    size_t column;
    char msg[BH_ERROR_MSG_MAX];
} bh_error;

/* Short name of a status ("input error", ...). */
const char *bh_status_name(bh_status s);

/* Record an error.  `where` (may be NULL) is a file name or "formula";
 * line/column are printed when non-zero.  Returns `s` so callers can write
 * `return bh_error_at(err, BH_EINPUT, path, line, col, "...", ...)`.
 * A NULL err is allowed.  The message is truncated, never overflowed. */
bh_status bh_error_at(bh_error *err, bh_status s, const char *where,
                      size_t line, size_t column, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Shorthand without a location. */
bh_status bh_error_set(bh_error *err, bh_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Clear an error record to BH_OK with an empty message. */
void bh_error_clear(bh_error *err);

/* Render text for a message: at most `max` bytes of `s`, with control bytes
 * and non-printable bytes escaped (\n, \t, \xNN), truncated with "..." when
 * longer.  Writes into buf (size bufsize) and returns buf. */
char *bh_quote(char *buf, size_t bufsize, const char *s, size_t max);

#endif
