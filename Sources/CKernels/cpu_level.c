#include "chorus_kernels.h"

/* What the vector unit runs, for choosing among kernels built for named CPU generations (OpenBLAS's core
   types). __builtin_cpu_supports also checks that the OS saves the wider registers. */
int chorus_cpu_vector_level(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    const int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (avx512 && __builtin_cpu_supports("avx512bf16")) return 3;
    if (avx512) return 2;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 1;
#endif
    return 0;
}
