import Logging
import NIOCore

/// What a handler knows about the call it serves.
public struct CallContext: Sendable {
    public let method: String
    public let streamID: UInt64
    /// When the caller stops waiting; the server cancels the handler's task then.
    public let deadline: NIODeadline?
    public let metadata: [String: String]
    public let remoteAddress: String
    private var baseLogger: Logger
    /// The server's logger with the call's method and request id as metadata. Made when asked for: a log
    /// handler may format its metadata on every change (swift-log's StreamLogHandler does), which a call that
    /// logs nothing (most) should not pay for.
    public var logger: Logger {
        get {
            var logger = baseLogger
            logger[metadataKey: "method"] = "\(method)"
            if let requestID = metadata["request-id"] { logger[metadataKey: "request-id"] = "\(requestID)" }
            return logger
        }
        set { baseLogger = newValue }
    }

    public init(method: String, streamID: UInt64, deadline: NIODeadline?, metadata: [String: String],
                remoteAddress: String, logger: Logger) {
        self.method = method
        self.streamID = streamID
        self.deadline = deadline
        self.metadata = metadata
        self.remoteAddress = remoteAddress
        self.baseLogger = logger
    }

    /// The caller's remaining time, to pass on to the next hop (the gateway propagates deadlines this way).
    public var timeRemaining: TimeAmount? {
        deadline.map { $0 - .now() }
    }
}

/// Per-call options on the client side.
public struct CallOptions: Sendable {
    public var deadline: NIODeadline?
    public var metadata: [String: String]

    public init(deadline: NIODeadline? = nil, metadata: [String: String] = [:]) {
        self.deadline = deadline
        self.metadata = metadata
    }

    public init(timeout: TimeAmount, metadata: [String: String] = [:]) {
        self.init(deadline: .now() + timeout, metadata: metadata)
    }

    /// Milliseconds left for the OPEN frame: at least 1 so a nearly-passed deadline is not read as "none".
    var deadlineMilliseconds: UInt32 {
        guard let deadline else { return 0 }
        let ms = (deadline - .now()).nanoseconds / 1_000_000
        return UInt32(clamping: max(1, ms))
    }
}
