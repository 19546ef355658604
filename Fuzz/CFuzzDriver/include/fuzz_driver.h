#ifndef CHORUS_FUZZ_DRIVER_H
#define CHORUS_FUZZ_DRIVER_H

/// Hands the process to libFuzzer's driver when the binary was linked with it (swift build -Xswiftc
/// -sanitize=fuzzer, as scripts/fuzz does); returns -1 at once when it was not. Depending on the link,
/// libFuzzer's own main may run instead of the Swift one; either way libFuzzer calls
/// LLVMFuzzerInitialize, which picks the target (chorus_fuzz_select, in Swift) and takes its name off
/// the arguments, then LLVMFuzzerTestOneInput for every input.
int chorus_fuzz_run(int argc, char **argv);

/// Implemented in Swift (Fuzz/Driver/LibFuzzerEntry.swift).
int chorus_fuzz_select(int *argc, char ***argv);

#endif
