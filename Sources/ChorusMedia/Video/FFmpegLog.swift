import CVideoShim

/// FFmpeg's warnings and errors, which it would print to stderr, go to one handler (a service sets its
/// logger's); without one they are dropped.
public enum FFmpegLog {
    public enum Level: Sendable { case error, warning }

    public typealias Handler = @Sendable (Level, String) -> Void

    nonisolated(unsafe) private static var handler: Handler?

    /// Sets where FFmpeg's lines go. Call once at start, before any video is opened.
    public static func route(to handler: @escaping Handler) {
        Self.handler = handler
        chorus_video_set_log_sink { level, line in
            guard let line, let handler = FFmpegLog.handler else { return }
            handler(level <= 16 ? .error : .warning, String(cString: line))
        }
    }
}
