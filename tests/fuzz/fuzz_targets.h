/* fuzz_targets.h - the code paths the libFuzzer targets exercise.
 *
 * Each function takes one fuzzer input and runs it through the library the
 * way the program does.  They are shared by the libFuzzer entry points
 * (tests/fuzz/fuzz_<target>.c, built by `make fuzz`) and by the Criterion
 * replay of tests/fuzz/crashes/ in tests/cli/test_bad_inputs.c, so every
 * crash ever found is re-run by `make test` through the same code.
 *
 * Contract: they return 0 and never crash, leak or hang, whatever the input;
 * an internal inconsistency (e.g. a failed status with an empty message)
 * returns -1, which the replay test treats as a failure too.
 */
#ifndef BH_FUZZ_TARGETS_H
#define BH_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

int bh_fuzz_csv(const uint8_t *data, size_t size);
int bh_fuzz_formula(const uint8_t *data, size_t size);
int bh_fuzz_fit(const uint8_t *data, size_t size);

#endif
