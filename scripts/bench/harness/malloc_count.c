/* Counts heap allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc) of a process, for
   `chorus bench wire`'s allocations-per-call column: preloaded, it exports chorus_malloc_count(), which the
   bench finds with dlsym and reads before and after each unary row.
     cc -O2 -shared -fPIC scripts/bench/harness/malloc_count.c -o /tmp/malloc_count.so -ldl
     LD_PRELOAD=/tmp/malloc_count.so .build/release/chorus bench wire --rounds 1
   The counts include every thread of the process (client, gateway and service share it in the bench). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdatomic.h>

static atomic_ulong count;
static void *(*real_malloc)(size_t), *(*real_calloc)(size_t, size_t), *(*real_realloc)(void *, size_t);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);

/* dlsym's own calloc during the lookup comes from this static area. */
static char bootstrap[4096];
static size_t bootstrap_used;

unsigned long chorus_malloc_count(void) { return atomic_load(&count); }

static void (*real_free)(void *);
void free(void *p) {
  if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof bootstrap) return;
  if (!real_free) real_free = dlsym(RTLD_NEXT, "free");
  real_free(p);
}

void *malloc(size_t n) {
  if (!real_malloc) real_malloc = dlsym(RTLD_NEXT, "malloc");
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_malloc(n);
}

void *calloc(size_t a, size_t b) {
  if (!real_calloc) {
    static int looking;
    if (looking) { void *p = bootstrap + bootstrap_used; bootstrap_used += (a * b + 15) & ~15UL; return p; }
    looking = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    looking = 0;
  }
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_calloc(a, b);
}

void *realloc(void *p, size_t n) {
  if (!real_realloc) real_realloc = dlsym(RTLD_NEXT, "realloc");
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_realloc(p, n);
}

int posix_memalign(void **out, size_t alignment, size_t n) {
  if (!real_posix_memalign) real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_posix_memalign(out, alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) {
  if (!real_aligned_alloc) real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
  atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
  return real_aligned_alloc(alignment, n);
}
