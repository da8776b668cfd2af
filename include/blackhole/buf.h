/* buf.h - reusable buffers for workspaces kept across calls. */
#ifndef BH_BUF_H
#define BH_BUF_H

#include <stddef.h>

/* A buffer of at least len (>= 1) elements of size sz: buf itself when its
 * capacity *cap suffices, else a new one (buf is freed; the contents are
 * not carried over; *cap updated; a buffer replaced because it was too
 * small gets an eighth more than len); NULL when out of memory (*cap =
 * 0). */
void *bh_reserve(void *buf, size_t *cap, size_t len, size_t sz);

/* An array of owned strings refilled in place (level tables, group labels
 * of data sets built again and again): *v has *have entries allocated,
 * each NULL or a string of at least *room bytes (*room 0: of unknown
 * size).  Makes entries 0..n-1 strings of at least need bytes, to be
 * written in place: the array and the strings are grown (with room to
 * spare: a grown array has strings in all its entries) only when too
 * small; the strings' text is not kept; entries past n stay as they are
 * (owned: the caller frees all *have of them).
 * Returns 0 when out of memory (everything still owned and freeable). */
int bh_reserve_strings(char ***v, size_t *have, size_t *room, size_t n, size_t need);

#endif
