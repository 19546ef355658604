import CCrashNote
import Foundation

/// The request a piece of work belongs to: its id travels as `request-id` metadata on every call
/// made while serving it, and the thread serving it is noted for the crash report.
public enum RequestNote {
    /// The request id of the call this task serves (set by the server for each call, by the HTTP
    /// front for each request); outgoing calls carry it unless they set their own.
    @TaskLocal public static var requestID: String?
    /// "request-id method", what a crash report names.
    @TaskLocal public static var current: String?

    /// A new id: 16 hex digits, enough to find one request in a day of logs.
    public static func newID() -> String {
        String(UInt64.random(in: 1...UInt64.max), radix: 16)
    }

    /// Installs the fatal-signal handlers once per process.
    public static func installCrashReport(process: String) {
        if chorus_crash_note_install(process) != 0 {
            FileHandle.standardError.write(Data("chorus: could not install the crash report handlers\n".utf8))
        }
    }

    /// Notes what this thread now serves; nil clears it.
    public static func noteThread(_ note: String?) {
        if let note { chorus_crash_note_set(note) } else { chorus_crash_note_set(nil) }
    }
}
