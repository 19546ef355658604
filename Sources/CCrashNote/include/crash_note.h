#ifndef CHORUS_CRASH_NOTE_H
#define CHORUS_CRASH_NOTE_H

/// A Swift trap (an overflow, a failed conversion, a force unwrap) ends the process with SIGILL or
/// SIGTRAP and a "Fatal error" line that names the code but not the request. These notes name it:
/// each thread records the request it is serving, and a handler for the fatal signals writes that
/// note, and the last request started anywhere, to standard error before the process dies.

/// Installs the handlers (SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGFPE, SIGABRT) on an alternate stack.
/// `process` names the process in the line written. Returns 0, or -1 if sigaction failed.
int chorus_crash_note_install(const char *process);

/// Records `note` (truncated to 200 bytes) as what this thread now serves, and as the last request
/// started in the process. NULL clears this thread's note.
void chorus_crash_note_set(const char *note);

#endif
