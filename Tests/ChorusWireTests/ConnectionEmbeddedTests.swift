import ChorusAPI
import ChorusTestSupport
@testable import ChorusWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import Testing

/// The server's and the client's connection handlers on an NIOAsyncTestingChannel, behind the frame
/// decoder WireServer and WireClient install in front of them: frames in, frames out, no sockets, no
/// processes. Handlers run as Swift tasks and write back through the event loop from other threads,
/// so what they write is polled for with a deadline, never waited for with a sleep; deadlines are
/// driven by moving the testing loop's clock, not by waiting for the real one.
@Suite(.timeLimit(.minutes(1))) struct ConnectionEmbeddedTests {
    // MARK: server

    @Test func aUnaryCallIsAnsweredInItsCloseFrame() async throws {
        let s = try await EmbeddedServer.start()
        let request = EchoRequest(payload: Data("hello".utf8))
        try await deliver(Frame(streamID: 1, kind: .open, method: TestMethods.echo.path,
                                payload: try request.wireBytes(), endOfStream: true), to: s.channel)
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        let answer = frames[0]
        #expect(answer.streamID == 1 && answer.kind == .close)
        #expect(answer.status == WireStatus(.ok, ""))
        // A unary answer travels in the CLOSE frame itself.
        let payload = try #require(answer.payloadBytes)
        let response = try EchoResponse(wireBytes: payload)
        #expect(response.payload == Data("hello".utf8))
        #expect(response.servedBy == TestMethods.echo.path)
        #expect(s.server.stats.inFlight == 0)
        #expect(s.server.stats.callsTotal == 1 && s.server.stats.callsFailed == 0)
        try await s.stop()
    }

    @Test func aStreamingCallSendsItsMessagesThenCloseWithOK() async throws {
        let s = try await EmbeddedServer.start()
        let request = EchoRequest(payload: Data("s".utf8), count: 3)
        try await deliver(Frame(streamID: 5, kind: .open, method: TestMethods.stream.path,
                                payload: try request.wireBytes(), endOfStream: true), to: s.channel)
        let frames = try await awaitFrames(4, on: s.channel)
        try #require(frames.count == 4, "\(frames)")
        let kinds: [Frame.Kind] = frames.map(\.kind)
        let expectedKinds: [Frame.Kind] = [.message, .message, .message, .close]
        #expect(kinds == expectedKinds)
        #expect(frames.allSatisfy { $0.streamID == 5 })
        let sequences: [UInt32] = try frames.dropLast().map { try EchoResponse(wireBytes: $0.payloadBytes ?? []).sequence }
        let expectedSequences: [UInt32] = [0, 1, 2]
        #expect(sequences == expectedSequences)
        #expect(frames[3].status == WireStatus(.ok, ""))
        #expect(frames[3].payload == nil, "a streaming call's CLOSE carries no message")
        #expect(s.server.stats.inFlight == 0 && s.server.stats.callsTotal == 1)
        try await s.stop()
    }

    @Test func anUnknownMethodIsClosedWithUnimplemented() async throws {
        let s = try await EmbeddedServer.start()
        try await deliver(Frame(streamID: 3, kind: .open, method: "/test.Wire/Nope", payload: [], endOfStream: true), to: s.channel)
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 3 && frames[0].kind == .close)
        #expect(frames[0].status == WireStatus(.unimplemented, "unknown method /test.Wire/Nope"))
        #expect(s.server.stats.inFlight == 0)
        #expect(s.server.stats.callsTotal == 1 && s.server.stats.callsFailed == 1)
        try await s.stop()
    }

    @Test func anUnknownFrameKindIsClosedWithUnimplemented() async throws {
        let s = try await EmbeddedServer.start()
        try await deliver(Frame(streamID: 9, kind: .unknown(42)), to: s.channel)
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 9 && frames[0].kind == .close)
        #expect(frames[0].status == WireStatus(.unimplemented, "unknown frame kind 42 on stream 9"))
        try await s.stop()
    }

    @Test func aPassedDeadlineClosesTheStreamWithDeadlineExceededAndCancelsTheHandler() async throws {
        let s = try await EmbeddedServer.start()
        let request = EchoRequest(payload: Data("late".utf8), delayMs: 60_000)
        try await deliver(Frame(streamID: 1, kind: .open, method: TestMethods.echo.path, deadlineMs: 50,
                                payload: try request.wireBytes(), endOfStream: true), to: s.channel)
        // The handler notes its caller first thing, then sleeps: once noted, the deadline catches it mid-work.
        #expect(await eventually { !s.probe.remoteAddresses.isEmpty }, "the handler started")
        #expect(try await writtenFrames(s.channel).isEmpty, "nothing is answered before the deadline")
        // The server set the deadline from the real clock, 50 ms after the OPEN; its timer sits on the
        // connection's loop, whose clock moves only when told: move it a second past now.
        await s.channel.testingEventLoop.advanceTime(to: NIODeadline.now() + .seconds(1))
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 1 && frames[0].kind == .close)
        #expect(frames[0].status == WireStatus(.deadlineExceeded, "deadline of 50 ms exceeded for \(TestMethods.echo.path)"))
        #expect(await eventually { s.probe.wasCancelled("late") }, "the handler's task was cancelled")
        #expect(s.server.stats.inFlight == 0 && s.server.stats.callsFailed == 1)
        try await s.stop()
    }

    @Test func cancelFromTheClientCancelsTheHandler() async throws {
        let s = try await EmbeddedServer.start()
        let request = EchoRequest(payload: Data("cancel me".utf8), delayMs: 60_000)
        try await deliver(Frame(streamID: 1, kind: .open, method: TestMethods.echo.path,
                                payload: try request.wireBytes(), endOfStream: true), to: s.channel)
        #expect(await eventually { !s.probe.remoteAddresses.isEmpty }, "the handler started")
        #expect(s.server.stats.inFlight == 1)
        try await deliver(Frame(streamID: 1, kind: .cancel), to: s.channel)
        #expect(s.server.stats.inFlight == 0, "the CANCEL ended the stream")
        #expect(await eventually { s.probe.wasCancelled("cancel me") }, "the handler's task was cancelled")
        // The caller ended the stream itself, so no CLOSE goes back: the handler's own finish finds the
        // stream gone and writes nothing, whenever it runs.
        #expect(try await writtenFrames(s.channel).isEmpty)
        // A late message for the ended stream is dropped, not answered.
        try await deliver(Frame(streamID: 1, kind: .message, payload: [1]), to: s.channel)
        #expect(try await writtenFrames(s.channel).isEmpty)
        try await s.stop()
    }

    @Test func pingIsAnsweredWithPongCarryingItsPayload() async throws {
        let s = try await EmbeddedServer.start()
        let payload: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 42]
        try await deliver(Frame(streamID: 0, kind: .ping, payload: payload), to: s.channel)
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 0 && frames[0].kind == .pong)
        #expect(frames[0].payloadBytes == payload)
        try await s.stop()
    }

    @Test func drainingSendsGoawayRefusesNewStreamsAndClosesAfterTheOpenOnes() async throws {
        let s = try await EmbeddedServer.start()
        // A client-streaming call stays open until its caller half-closes.
        try await deliver(Frame(streamID: 1, kind: .open, method: TestMethods.upload.path), to: s.channel)
        #expect(s.server.stats.inFlight == 1)
        let connection = s.connection
        try await s.channel.testingEventLoop.executeInContext { connection.startDraining() }
        var frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 0 && frames[0].kind == .goaway)
        #expect(frames[0].status.code == .ok, "a drain's GOAWAY carries no error")
        #expect(s.channel.isActive, "the open call keeps the connection open")

        // A new stream after GOAWAY is refused.
        try await deliver(Frame(streamID: 3, kind: .open, method: TestMethods.echo.path,
                                payload: try EchoRequest().wireBytes(), endOfStream: true), to: s.channel)
        frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 3 && frames[0].kind == .close)
        #expect(frames[0].status == WireStatus(.unavailable, "server is shutting down; retry on another connection"))

        // The open call finishes normally; then the connection closes.
        try await deliver(Frame(streamID: 1, kind: .message, payload: try EchoRequest(payload: Data("abc".utf8)).wireBytes(),
                                endOfStream: true), to: s.channel)
        frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 1 && frames[0].kind == .close)
        #expect(frames[0].status == WireStatus(.ok, ""))
        let summary = try EchoResponse(wireBytes: try #require(frames[0].payloadBytes))
        #expect(summary.messagesReceived == 1 && summary.bytesReceived == 3)
        #expect(await eventually { !s.channel.isActive }, "the connection closed once its last call finished")
        try await s.stop()
    }

    @Test func aConnectionOverTheLimitGetsGoawayWithTheReasonAndIsClosed() async throws {
        let refusal = WireStatus(.resourceExhausted, "the server has 1024 connections open, its limit (--max-connections); retry later")
        let s = try await EmbeddedServer.start(refusal: refusal)
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 0 && frames[0].kind == .goaway)
        #expect(frames[0].status == refusal)
        #expect(await eventually { !s.channel.isActive }, "the refused connection is closed")
        try await s.stop()
    }

    @Test func anOversizedFrameGetsGoawayWithResourceExhaustedAndTheConnectionCloses() async throws {
        let s = try await EmbeddedServer.start(maxFrameSize: 1024)
        var prefix = s.channel.allocator.buffer(capacity: 4)
        prefix.writeInteger(UInt32(4096))
        try await s.channel.writeInbound(prefix)
        let frames = try await awaitFrames(1, on: s.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == 0 && frames[0].kind == .goaway)
        #expect(frames[0].status == WireStatus(.resourceExhausted, "frame of 4096 bytes exceeds the limit of 1024 bytes"))
        #expect(await eventually { !s.channel.isActive }, "framing is lost: the connection is closed")
        try await s.stop()
    }

    // MARK: client

    @Test func responseFramesCompleteTheCallsResponses() async throws {
        let c = try await EmbeddedClient.start()
        let request = try EchoRequest(payload: Data("q".utf8), count: 2).wireBytes()
        let (call, opened) = try await c.open(TestMethods.stream.path, first: request)
        #expect(opened.method == TestMethods.stream.path && opened.endOfStream && opened.deadlineMs == 0)
        #expect(opened.payloadBytes == request)
        try await deliver(Frame(streamID: opened.streamID, kind: .message, payload: [1]), to: c.channel)
        try await deliver(Frame(streamID: opened.streamID, kind: .message, payload: [2]), to: c.channel)
        try await deliver(Frame(streamID: opened.streamID, kind: .close, payload: [3], status: WireStatus(.ok, "")), to: c.channel)
        var parts: [ResponsePart] = []
        for try await part in call.responses { parts.append(part) }
        let payloads: [[UInt8]] = parts.map(\.bytes)
        let expectedPayloads: [[UInt8]] = [[1], [2], [3]]
        #expect(payloads == expectedPayloads)
        let finals: [Bool] = parts.map(\.isFinal)
        #expect(finals == [false, false, true], "only the CLOSE frame's message is final")
        #expect(try await c.acceptsNewStreams(), "the connection serves further calls")
        try await c.stop()
    }

    @Test func aCloseWithAnErrorStatusThrowsThatStatus() async throws {
        let c = try await EmbeddedClient.start()
        let (call, opened) = try await c.open(TestMethods.fail.path, first: [])
        let failure = WireStatus(.failedPrecondition, "no model: whisper")
        try await deliver(Frame(streamID: opened.streamID, kind: .close, status: failure), to: c.channel)
        #expect(try await statusOfResponses(call) == failure)
        #expect(try await c.acceptsNewStreams(), "one failed call leaves the connection usable")
        try await c.stop()
    }

    @Test func aClientDeadlineSendsCancelAndFailsWithDeadlineExceeded() async throws {
        let c = try await EmbeddedClient.start()
        let (call, opened) = try await c.open(TestMethods.echo.path, options: CallOptions(timeout: .milliseconds(50)), first: [])
        #expect(opened.deadlineMs >= 1 && opened.deadlineMs <= 50, "the OPEN frame carries the time left: \(opened.deadlineMs) ms")
        // The timer sits on the connection's loop, whose clock moves only when told: move it past the deadline.
        await c.channel.testingEventLoop.advanceTime(to: NIODeadline.now() + .seconds(1))
        let frames = try await awaitFrames(1, on: c.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == opened.streamID && frames[0].kind == .cancel, "the server is told to stop the work")
        #expect(try await statusOfResponses(call)?.code == .deadlineExceeded)
        try await c.stop()
    }

    @Test func cancellingACallSendsCancelAndEndsItWithCancelled() async throws {
        let c = try await EmbeddedClient.start()
        let (call, opened) = try await c.open(TestMethods.echo.path, first: [])
        call.cancel()
        let frames = try await awaitFrames(1, on: c.channel)
        try #require(frames.count == 1, "\(frames)")
        #expect(frames[0].streamID == opened.streamID && frames[0].kind == .cancel)
        #expect(try await statusOfResponses(call)?.code == .cancelled)
        try await c.stop()
    }

    @Test func goawayStopsNewCallsOnTheConnectionButLetsOpenOnesFinish() async throws {
        let c = try await EmbeddedClient.start()
        let (call, opened) = try await c.open(TestMethods.echo.path, first: [])
        #expect(try await c.acceptsNewStreams())
        try await deliver(Frame(streamID: 0, kind: .goaway), to: c.channel)
        let accepts = try await c.acceptsNewStreams()
        #expect(!accepts, "WireClient takes a new connection for the next call")
        #expect(c.channel.isActive, "a GOAWAY without an error leaves the open calls to finish")
        try await deliver(Frame(streamID: opened.streamID, kind: .close, payload: [7]), to: c.channel)
        var payloads: [[UInt8]] = []
        for try await part in call.responses { payloads.append(part.bytes) }
        let expected: [[UInt8]] = [[7]]
        #expect(payloads == expected)
        try await c.stop()
    }

    @Test func goawayWithAnErrorFailsOpenCallsAndClosesTheConnection() async throws {
        let c = try await EmbeddedClient.start()
        let (call, _) = try await c.open(TestMethods.echo.path, first: [])
        let refusal = WireStatus(.resourceExhausted, "the server has 1024 connections open, its limit (--max-connections); retry later")
        try await deliver(Frame(streamID: 0, kind: .goaway, status: refusal), to: c.channel)
        #expect(try await statusOfResponses(call) == refusal)
        #expect(await eventually { !c.channel.isActive }, "the connection is closed")
        #expect(await eventually { c.closes.withLockedValue { $0 } == 1 }, "the client was told the connection closed")
        let accepts = try await c.acceptsNewStreams()
        #expect(!accepts)
        // A call opened on the closed connection fails at once with UNAVAILABLE.
        let late = try c.connection.open(method: TestMethods.echo.path, options: CallOptions(), first: ByteBuffer(), endOfStream: true)
        #expect(try await statusOfResponses(late)?.code == .unavailable)
        try await c.stop()
    }
}

// MARK: - harness

private struct EmbeddedTestError: Error, CustomStringConvertible {
    let description: String
}

/// A ServerConnection as WireServer's child channel initializer builds it (less the idle timer, which
/// these tests do not exercise), on a registered, connected testing channel.
private struct EmbeddedServer {
    let server: WireServer
    let connection: ServerConnection
    let channel: NIOAsyncTestingChannel
    let probe: Probe

    static func start(maxFrameSize: Int = defaultMaxFrameSize, refusal: WireStatus? = nil) async throws -> EmbeddedServer {
        let probe = Probe()
        let server = WireServer(configuration: .init(maxFrameSize: maxFrameSize, limits: .init(idleTimeout: nil)),
                                routes: testRoutes(probe))
        let channel = NIOAsyncTestingChannel()
        let connection = ServerConnection(server: server, channel: channel)
        connection.refusal = refusal
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)),
                connection,
            ])
        }
        try await channel.register()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_000))
        return EmbeddedServer(server: server, connection: connection, channel: channel, probe: probe)
    }

    /// Closes the channel (unless the test saw it closed) and runs what is left on its loop; an error
    /// that reached the end of the pipeline is thrown here.
    func stop() async throws {
        _ = try await channel.finish(acceptAlreadyClosed: true)
    }
}

/// A ClientConnection as WireClient's connect builds it, on a registered, connected testing channel.
private struct EmbeddedClient {
    let connection: ClientConnection
    let channel: NIOAsyncTestingChannel
    /// How often the connection reported that it closed (WireClient drops it then).
    let closes: NIOLockedValueBox<Int>

    static func start(maxFrameSize: Int = defaultMaxFrameSize) async throws -> EmbeddedClient {
        let channel = NIOAsyncTestingChannel()
        let closes = NIOLockedValueBox(0)
        let connection = ClientConnection(channel: channel, address: "embedded:1", maxFrameSize: maxFrameSize,
                                          maxBufferedBytes: 8 << 20) { _ in
            closes.withLockedValue { $0 += 1 }
        }
        try await channel.testingEventLoop.executeInContext {
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(FrameDecoder(maxFrameSize: maxFrameSize)),
                connection,
            ])
        }
        try await channel.register()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 40_001))
        return EmbeddedClient(connection: connection, channel: channel, closes: closes)
    }

    /// Closes the channel (unless the test saw it closed) and runs what is left on its loop; an error
    /// that reached the end of the pipeline is thrown here.
    func stop() async throws {
        _ = try await channel.finish(acceptAlreadyClosed: true)
    }

    /// Opens a call; returns it with the OPEN frame the connection wrote for it (which names its stream).
    func open(_ method: String, options: CallOptions = CallOptions(), first: [UInt8]?,
              endOfStream: Bool = true) async throws -> (ClientCall, Frame) {
        let call = try connection.open(method: method, options: options, first: first.map { ByteBuffer(bytes: $0) },
                                       endOfStream: endOfStream)
        let frames = try await awaitFrames(1, on: channel)
        guard frames.count == 1, frames[0].kind == .open else {
            throw EmbeddedTestError(description: "expected one OPEN frame, the connection wrote \(frames)")
        }
        return (call, frames[0])
    }

    /// Whether WireClient would put a new call on this connection (read on the loop, where it is kept).
    func acceptsNewStreams() async throws -> Bool {
        let connection = self.connection
        return try await channel.testingEventLoop.executeInContext { connection.acceptsNewStreams }
    }
}

/// Writes `frame` into the channel as the peer's bytes, through the frame decoder.
private func deliver(_ frame: Frame, to channel: NIOAsyncTestingChannel) async throws {
    try await channel.writeInbound(try frame.encoded(allocator: channel.allocator, maxFrameSize: .max))
}

/// The frames in one outbound buffer (each write of the connections carries one).
private func framesIn(_ buffer: ByteBuffer) throws -> [Frame] {
    var buffer = buffer
    var frames: [Frame] = []
    while let length = buffer.readInteger(as: UInt32.self) {
        guard let body = buffer.readSlice(length: Int(length)) else {
            throw EmbeddedTestError(description: "a frame of \(length) bytes is cut off in the outbound buffer")
        }
        frames.append(try Frame.decode(body))
    }
    return frames
}

/// The frames written and flushed so far, after running what the loop has due now (the connections
/// flush from a task they schedule on the loop, once per tick).
private func writtenFrames(_ channel: NIOAsyncTestingChannel) async throws -> [Frame] {
    await channel.testingEventLoop.run()
    var frames: [Frame] = []
    while let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
        frames += try framesIn(buffer)
    }
    return frames
}

/// Polls until at least `count` frames have been written (handler tasks write from other threads), or
/// `timeout` passes; returns what was written, in order, for the caller to check.
private func awaitFrames(_ count: Int, on channel: NIOAsyncTestingChannel,
                         timeout: Duration = .seconds(10)) async throws -> [Frame] {
    var frames: [Frame] = []
    _ = try await eventually(timeout: timeout, pollInterval: .milliseconds(2)) {
        frames += try await writtenFrames(channel)
        return frames.count >= count
    }
    return frames
}

/// Reads a call's responses to the end: nil when they finish normally, the status when they throw one.
private func statusOfResponses(_ call: ClientCall) async throws -> WireStatus? {
    do {
        for try await _ in call.responses {}
        return nil
    } catch let status as WireStatus {
        return status
    }
}
