#include "crash_note.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOTE_SIZE 201

static __thread char thread_note[NOTE_SIZE];
static char last_note[NOTE_SIZE];
static char process_name[64] = "chorus";

static void copy_text(char *target, size_t size, const char *source) {
    size_t n = 0;
    if (source) {
        while (n < size - 1 && source[n]) n++;
        memcpy(target, source, n);
    }
    target[n] = 0;
}

void chorus_crash_note_set(const char *note) {
    copy_text(thread_note, NOTE_SIZE, note);
    if (note) copy_text(last_note, NOTE_SIZE, note);
}

/* Only async-signal-safe calls from here on: write(2), no stdio, no malloc. */
static void put(const char *text) {
    size_t n = strlen(text);
    while (n > 0) {
        ssize_t written = write(STDERR_FILENO, text, n);
        if (written <= 0) return;
        text += written;
        n -= (size_t)written;
    }
}

static const char *signal_name(int number) {
    switch (number) {
    case SIGILL: return "SIGILL (a Swift trap)";
    case SIGTRAP: return "SIGTRAP (a Swift trap)";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    default: return "a fatal signal";
    }
}

static void on_fatal_signal(int number) {
    put("chorus crash: ");
    put(process_name);
    put(" died of ");
    put(signal_name(number));
    put(" serving ");
    put(thread_note[0] ? thread_note : "no request on this thread");
    put("; last request started: ");
    put(last_note[0] ? last_note : "none");
    put("\n");
    /* SA_RESETHAND restored the default action: re-raise so the process ends as it would have. */
    raise(number);
}

int chorus_crash_note_install(const char *process) {
    copy_text(process_name, sizeof process_name, process);
    /* The installing thread's stack overflow still gets its line; failing this only loses that. */
    static char alternate_stack[64 * 1024];
    stack_t stack = {.ss_sp = alternate_stack, .ss_size = sizeof alternate_stack, .ss_flags = 0};
    sigaltstack(&stack, NULL);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_fatal_signal;
    action.sa_flags = SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    const int fatal[] = {SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++) {
        if (sigaction(fatal[i], &action, NULL) != 0) return -1;
    }
    return 0;
}
