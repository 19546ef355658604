import CCrashNote
import Foundation
import Synchronization

/// The request a piece of work belongs to: its id travels as `request-id` metadata on every call
/// made while serving it, and the thread serving it is noted for the crash report.
public enum RequestNote {
    /// The request id of the call this task serves (set by the server for each call, by the HTTP
    /// front for each request); outgoing calls carry it unless they set their own.
    @TaskLocal public static var requestID: String?
    /// "request-id method", what a crash report names.
    @TaskLocal public static var current: String?

    /// A new id: 16 hex digits, enough to find one request in a day of logs. Each is SplitMix64 of the next step
    /// of a sequence from a random start: as unpredictable-looking as a random number, unique within the process
    /// (SplitMix64 is a bijection), and free of the getrandom system call a random number cost per call.
    public static func newID() -> String {
        let step = idSequence.wrappingAdd(0x9E37_79B9_7F4A_7C15, ordering: .relaxed).newValue
        var z = step
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return String(z ^ (z >> 31), radix: 16)
    }

    private static let idSequence = Atomic<UInt64>(UInt64.random(in: 0...UInt64.max))

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
