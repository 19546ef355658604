import NIOCore

/// A route's way to relay a unary call without leaving the event loop its OPEN frame arrived on: no Swift task,
/// no request or answer streams. Called there with the call's one request; returns false to leave the call to
/// the route's async handler (nothing sent yet), true once it has taken the call and will answer it.
/// At concurrency 1 a relayed call is two socket reads and two writes; a task and its streams cost as much again
/// (`chorus bench wire`'s hop row).
public typealias LoopRelay = @Sendable (LoopCall) -> Bool

/// A unary call being relayed on its connection's event loop. Use it only there.
public final class LoopCall {
    public let method: String
    public let deadline: NIODeadline?
    /// The caller's metadata, its `request-id` filled in when it sent none.
    public let metadata: [String: String]
    /// The one request message, as it arrived.
    public let request: ByteBuffer
    public var eventLoop: EventLoop { connection.eventLoop }
    private let connection: ServerConnection
    private let streamID: UInt64

    init(connection: ServerConnection, streamID: UInt64, method: String, deadline: NIODeadline?,
         metadata: [String: String], request: ByteBuffer) {
        self.connection = connection
        self.streamID = streamID
        self.method = method
        self.deadline = deadline
        self.metadata = metadata
        self.request = request
    }

    /// `body` runs once if the call ends before it is answered (the caller cancelled, its deadline passed, its
    /// connection closed), with why; it should stop the work.
    public func onCancel(_ body: @escaping (WireStatus) -> Void) {
        connection.setOnCancel(streamID, body)
    }

    /// A MESSAGE frame to the caller.
    public func send(_ payload: ByteBuffer) {
        connection.sendOnLoop(streamID: streamID, payload: payload)
    }

    /// The CLOSE frame: the call's status and, for an answer, its payload. Later calls do nothing.
    public func finish(_ status: WireStatus, payload: ByteBuffer?) {
        connection.finish(streamID, status: status, payload: payload)
    }
}

/// What a call opened on the event loop hears from the server, there: its messages, then its end (the CLOSE
/// frame's status and payload; a local failure or cancellation ends it too, with its status).
public enum LoopAnswer {
    case message(ByteBuffer)
    case end(payload: ByteBuffer?, status: WireStatus)
}

/// A call opened on the event loop (WireClient.openOnLoop). Use it only there.
public struct LoopUpstream {
    let connection: ClientConnection
    let streamID: UInt64

    /// Sends CANCEL; the call ends with CANCELLED (its answer handler hears it at once).
    public func cancel() {
        connection.cancelOnLoop(streamID)
    }
}
