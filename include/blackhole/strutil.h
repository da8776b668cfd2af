/* strutil.h - small string helpers shared by the library and the CLI. */
#ifndef BH_STRUTIL_H
#define BH_STRUTIL_H

#include <stddef.h>

/* Levenshtein distance between a and b (bytes). */
size_t bh_edit_distance(const char *a, const char *b);

/* The candidate closest to `name` when it is a plausible typo (distance at
 * most max(1, strlen(name)/3)), else NULL.  Ties go to the first. */
const char *bh_suggest(const char *name, const char *const *cands, size_t n);

/* strdup that returns NULL for a NULL input. */
char *bh_strdup(const char *s);

#endif
