/* fuzz_formula.c - libFuzzer entry point for bh_fuzz_formula (fuzz_targets.c).
 * An invariant violation aborts, so libFuzzer saves the input as a crash. */
#include <gsl/gsl_errno.h>
#include <stdlib.h>

#include "fuzz_targets.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    gsl_set_error_handler_off();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (bh_fuzz_formula(data, size) != 0)
        abort();
    return 0;
}
