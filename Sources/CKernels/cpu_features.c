#include "chorus_kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* The one place this process decides which instruction sets its kernels use. The CPU is asked once (CPUID,
   and XGETBV for the registers the OS saves on a context switch: a CPU may have AVX-512 that the kernel
   never enabled), the level is capped by CHORUS_CPU, and every kernel reads chorus_cpu_level(). */

static const char *const level_names[] = {"plain", "avx2", "avx512", "avx512-vnni", "avx512-bf16", "amx"};

const char *chorus_cpu_level_name(int level) {
    return level >= CHORUS_CPU_PLAIN && level <= CHORUS_CPU_AMX ? level_names[level] : "unknown";
}

int chorus_cpu_parse_level(const char *text) {
    if (!text || !*text || strcmp(text, "auto") == 0) return CHORUS_CPU_UNSET;
    for (int level = CHORUS_CPU_PLAIN; level <= CHORUS_CPU_AMX; level++)
        if (strcmp(text, level_names[level]) == 0) return level;
    return CHORUS_CPU_INVALID;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static int amx_permission = 0;  /* 1 once Linux granted this process the AMX tile data state */

static unsigned long long xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

/* Linux (5.16 on) gives a process AMX's 8 KiB of tile state only when asked: without it the first tile
   instruction ends the process with SIGILL. ARCH_REQ_XCOMP_PERM and XFEATURE_XTILEDATA, from asm/prctl.h
   (not in every libc's headers). */
static int request_amx(void) {
    enum { ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    unsigned long long permitted = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &permitted) != 0) return 0;
    return (permitted >> XFEATURE_XTILEDATA) & 1;
}

static int detect(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return CHORUS_CPU_PLAIN;
    const int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!osxsave || !avx) return CHORUS_CPU_PLAIN;
    const unsigned long long saved = xcr0();
    if ((saved & 0x6) != 0x6) return CHORUS_CPU_PLAIN;  /* SSE and AVX state */
    if (__get_cpuid_max(0, 0) < 7) return CHORUS_CPU_PLAIN;
    __cpuid_count(7, 0, a, b, c, d);
    const unsigned int leaf7_b = b, leaf7_c = c, leaf7_d = d;
    __cpuid_count(7, 1, a, b, c, d);
    const unsigned int leaf7_1a = a;
    if (!((leaf7_b >> 5) & 1) || !fma || !f16c) return CHORUS_CPU_PLAIN;
    const int avx512 = (leaf7_b >> 16 & 1) && (leaf7_b >> 17 & 1) && (leaf7_b >> 30 & 1) && (leaf7_b >> 31 & 1) &&
                       (saved & 0xE0) == 0xE0;  /* F, DQ, BW, VL; opmask and the upper ZMM state */
    if (!avx512) return CHORUS_CPU_AVX2;
    if (!((leaf7_c >> 11) & 1)) return CHORUS_CPU_AVX512;
    if (!((leaf7_1a >> 5) & 1)) return CHORUS_CPU_AVX512_VNNI;
    const int amx = (leaf7_d >> 24 & 1) && (leaf7_d >> 22 & 1) && (leaf7_d >> 25 & 1) &&  /* tile, BF16, INT8 */
                    (saved & 0x60000) == 0x60000;                                      /* XTILECFG, XTILEDATA */
    return amx ? CHORUS_CPU_AMX : CHORUS_CPU_AVX512_BF16;
}
#else
static int amx_permission = 0;
static int detect(void) { return CHORUS_CPU_PLAIN; }
static int request_amx(void) { return 0; }
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int detected = CHORUS_CPU_PLAIN, requested = CHORUS_CPU_UNSET, chosen = CHORUS_CPU_PLAIN;

static void choose(void) {
    detected = detect();
    requested = chorus_cpu_parse_level(getenv("CHORUS_CPU"));
    chosen = requested >= 0 && requested < detected ? requested : detected;
    if (chosen == CHORUS_CPU_AMX) {
        amx_permission = request_amx();
        if (!amx_permission) chosen = CHORUS_CPU_AVX512_BF16;
    }
}

int chorus_cpu_detected(void) { pthread_once(&once, choose); return detected; }
int chorus_cpu_requested(void) { pthread_once(&once, choose); return requested; }
int chorus_cpu_level(void) { pthread_once(&once, choose); return chosen; }
int chorus_cpu_amx_permitted(void) { pthread_once(&once, choose); return amx_permission; }
