import CVideoShim
import Foundation

/// FFmpeg's warnings and errors, which it would print to stderr, go to one handler (a service sets its
/// logger's); without one they are dropped.
public enum FFmpegLog {
    public enum Level: Sendable { case error, warning }

    public typealias Handler = @Sendable (Level, String) -> Void

    private static let lock = NSLock()
    nonisolated(unsafe) private static var handler: Handler?  // under lock: FFmpeg logs from any decoding thread

    /// Sets where FFmpeg's lines go (the last call wins).
    public static func route(to handler: @escaping Handler) {
        lock.withLock { Self.handler = handler }
        chorus_video_set_log_sink { level, line in
            guard let line, let handler = FFmpegLog.lock.withLock({ FFmpegLog.handler }) else { return }
            handler(level <= 16 ? .error : .warning, String(cString: line))
        }
    }
}
