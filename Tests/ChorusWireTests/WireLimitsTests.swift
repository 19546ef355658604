import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import NIOCore
import Testing

/// What a hostile client could grow without end on a wire server, over real loopback connections:
/// 20,000 OPEN frames, unread PONGs, silent sockets, extra messages to unary methods.
@Suite struct WireLimitsTests {
    func open(_ id: UInt64, delayMs: UInt32, tag: String = "x", end: Bool = true) throws -> Frame {
        Frame(streamID: id, kind: .open, method: TestMethods.echo.path,
              payload: try EchoRequest(payload: Data(tag.utf8), delayMs: delayMs).wireBytes(), endOfStream: end)
    }

    @Test func streamsPerConnectionAreCapped() async throws {
        try await withServer(limits: .init(maxStreamsPerConnection: 3)) { _, client, probe in
            let raw = try await RawConnection.connect(port: client.port)
            for id: UInt64 in [1, 3, 5] { try await raw.send(try open(id, delayMs: 30_000, tag: "held-\(id)")) }
            try await raw.send(try open(7, delayMs: 0))
            let refused = await raw.next()
            #expect(refused?.streamID == 7 && refused?.kind == .close && refused?.status.code == .resourceExhausted, "\(String(describing: refused))")
            // One held call cancelled makes room for the next.
            try await raw.send(Frame(streamID: 1, kind: .cancel))
            #expect(await probe.eventually(5) { probe.wasCancelled("held-1") })
            try await raw.send(try open(9, delayMs: 0))
            let served = await raw.next()
            #expect(served?.streamID == 9 && served?.status.code == .ok, "\(String(describing: served))")
            try await (raw.channel as? WireClient)?.close()
        }
    }

    @Test func connectionsPastTheLimitAreToldAndClosed() async throws {
        try await withServer(limits: .init(maxConnections: 2)) { _, client, _ in
            // Which of three simultaneous connections the server takes last is its choice (they are
            // accepted on different event loops): exactly one is told GOAWAY, the other two are served.
            var raws: [RawConnection] = []
            for _ in 0..<3 { raws.append(try await RawConnection.connect(port: client.port)) }
            var refused = 0, served = 0
            for raw in raws {
                try? await raw.send(Frame(streamID: 0, kind: .ping, payload: [1]))
                let first = await raw.next()
                if first?.kind == .goaway && first?.status.code == .resourceExhausted {
                    refused += 1
                } else if first?.kind == .pong {
                    served += 1
                }
            }
            #expect(refused == 1 && served == 2, "refused \(refused), served \(served)")
            for raw in raws { try? await (raw.channel as? WireClient)?.close() }
        }
    }

    @Test func silentConnectionsAreClosedButPingsAndOpenCallsKeepThem() async throws {
        // PINGs come ten times as often as the timeout: a loaded machine (the whole suite runs at once on two
        // cores) must not make a pinging connection look silent.
        try await withServer(limits: .init(idleTimeout: .seconds(1))) { _, client, _ in
            let silent = try await RawConnection.connect(port: client.port)
            let (frames, closed) = await silent.collectUntilClosed(timeout: 10)
            #expect(closed && frames.last?.kind == .goaway && frames.last?.status.code == .unavailable, "\(frames)")

            // PINGs every 100 ms for longer than the timeout keep a connection, and so does a call longer than it.
            let pinging = try await RawConnection.connect(port: client.port)
            var pongs = 0
            for i in 0..<15 {
                try await pinging.send(Frame(streamID: 0, kind: .ping, payload: [UInt8(i)]))
                if await pinging.next()?.kind == .pong { pongs += 1 }
                try await Task.sleep(for: .milliseconds(100))  // the pace of the PINGs, not a wait for a result
            }
            #expect(pongs == 15)
            try await pinging.send(try open(1, delayMs: 2000))
            let answer = await pinging.next()
            #expect(answer?.streamID == 1 && answer?.status.code == .ok, "\(String(describing: answer))")
            try await (pinging.channel as? WireClient)?.close()
        }
    }

    @Test func aSecondMessageToAUnaryMethodFailsItsStream() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send(try open(1, delayMs: 10_000, end: false))
            try await raw.send(Frame(streamID: 1, kind: .message, payload: [UInt8](repeating: 1, count: 1 << 20)))
            let answer = await raw.next()
            #expect(answer?.streamID == 1 && answer?.status.code == .invalidArgument, "\(String(describing: answer))")
            try await expectStillServing(client)
        }
    }

    /// A client-streaming upload larger than the connection's budget, in more messages than the old
    /// lifetime cap of 1024, goes through: the server pauses reading instead of failing.
    @Test func uploadsPastTheBufferBudgetAreSlowedNotRefused() async throws {
        try await withServer(limits: .init(maxBufferedBytesPerConnection: 256 << 10)) { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send(Frame(streamID: 1, kind: .open, method: TestMethods.upload.path))
            let chunk = try EchoRequest(payload: Data(repeating: 7, count: 4096)).wireBytes()
            for _ in 0..<2000 { try await raw.send(Frame(streamID: 1, kind: .message, payload: chunk)) }
            try await raw.send(Frame(streamID: 1, kind: .halfClose))
            let answer = await raw.next()
            #expect(answer?.status.code == .ok, "\(String(describing: answer))")
            let response = try answer?.payload.map { try EchoResponse(wireBuffer: $0) }
            #expect(response?.messagesReceived == 2000 && response?.bytesReceived == 2000 * 4096)
            try await (raw.channel as? WireClient)?.close()
        }
    }

    /// PINGs whose PONGs are never read used to grow the server by their size: now the server stops
    /// reading a peer that does not read, and the peer's own socket fills instead.
    @Test func aPeerThatDoesNotReadStopsBeingRead() async throws {
        try await withServer { _, client, _ in
            let fd = try connectedSocket(port: client.port)
            defer { close(fd) }
            let frame = try Frame(streamID: 0, kind: .ping, payload: [UInt8](repeating: 3, count: 1 << 20))
                .encoded(allocator: ByteBufferAllocator(), maxFrameSize: .max)
            let bytes = Array(frame.readableBytesView)
            // Write until the socket has not become writable for 2 s (the server stopped reading), at
            // most 256 MiB: before the fix all of it was read and answered into an unread PONG queue.
            // The blocking loop runs on its own thread, off the two threads Swift's tasks share.
            let sent = try await withCheckedThrowingContinuation { (done: CheckedContinuation<Int, Error>) in
                Thread.detachNewThread {
                    var sent = 0
                    writing: while sent < 256 << 20 {
                        var offset = 0
                        while offset < bytes.count {
                            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                            if n > 0 { offset += n; sent += n; continue }
                            guard errno == EAGAIN || errno == EWOULDBLOCK else { return done.resume(throwing: TestFailure("send: errno \(errno)")) }
                            var waiting = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                            if poll(&waiting, 1, 2000) == 0 { break writing }
                        }
                    }
                    done.resume(returning: sent)
                }
            }
            #expect(sent < 64 << 20, "the server read \(sent >> 20) MiB of PINGs from a peer that read none of its PONGs")
            try await expectStillServing(client)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
