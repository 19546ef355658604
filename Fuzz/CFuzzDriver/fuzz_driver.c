#include "fuzz_driver.h"

#include <stddef.h>
#include <stdint.h>

/* Weak: a plain build links without libFuzzer, and then this is null. */
extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size)) __attribute__((weak));
extern int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    return chorus_fuzz_select(argc, argv);
}

int chorus_fuzz_run(int argc, char **argv) {
    if (!LLVMFuzzerRunDriver) return -1;
    return LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput);
}
