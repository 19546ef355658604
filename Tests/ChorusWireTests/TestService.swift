import ChorusAPI
import ChorusWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A small service whose handlers record what happened to them, so tests can check the server side too.
final class Probe: Sendable {
    private let state = NIOLockedValueBox(State())

    struct State {
        var cancelled: Set<String> = []
        var remoteAddresses: Set<String> = []
        var streamed = 0
    }

    func cancelled(_ tag: String) { state.withLockedValue { _ = $0.cancelled.insert(tag) } }
    func wasCancelled(_ tag: String) -> Bool { state.withLockedValue { $0.cancelled.contains(tag) } }
    func saw(_ address: String) { state.withLockedValue { _ = $0.remoteAddresses.insert(address) } }
    var remoteAddresses: Set<String> { state.withLockedValue { $0.remoteAddresses } }
    func streamedOne() { state.withLockedValue { $0.streamed += 1 } }
    var streamed: Int { state.withLockedValue { $0.streamed } }

    /// Waits up to `timeout` seconds for `condition`.
    func eventually(_ timeout: Double = 2, _ condition: () -> Bool) async -> Bool {
        let giveUp = Date().addingTimeInterval(timeout)
        while Date() < giveUp {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}

enum TestMethods {
    static let echo = MethodDescriptor(service: "test.Wire", method: "Echo", kind: .unary)
    static let stream = MethodDescriptor(service: "test.Wire", method: "Stream", kind: .serverStreaming)
    static let upload = MethodDescriptor(service: "test.Wire", method: "Upload", kind: .clientStreaming)
    static let chat = MethodDescriptor(service: "test.Wire", method: "Chat", kind: .bidirectionalStreaming)
    static let fail = MethodDescriptor(service: "test.Wire", method: "Fail", kind: .unary)
}

func tag(_ request: EchoRequest) -> String { String(decoding: request.payload, as: UTF8.self) }

/// Sleeps, recording a cancellation under the request's tag.
func sleepRecording(_ milliseconds: UInt32, _ request: EchoRequest, _ probe: Probe) async throws {
    do {
        try await Task.sleep(for: .milliseconds(Int(milliseconds)))
    } catch {
        probe.cancelled(tag(request))
        throw error
    }
}

func testRoutes(_ probe: Probe) -> [ServerRoute] {
    [
        .unary(TestMethods.echo) { (request: EchoRequest, context) in
            probe.saw(context.remoteAddress)
            if request.delayMs > 0 { try await sleepRecording(request.delayMs, request, probe) }
            return EchoResponse(payload: request.payload, servedBy: context.method)
        },
        .serverStreaming(TestMethods.stream) { (request: EchoRequest, _, writer: ResponseWriter<EchoResponse>) in
            do {
                for sequence in 0..<request.count {
                    try await sleepRecording(request.delayMs, request, probe)
                    try await writer.write(EchoResponse(payload: request.payload, sequence: sequence))
                    probe.streamedOne()
                }
            } catch {
                // Cancelled while writing rather than sleeping: recorded all the same.
                probe.cancelled(tag(request))
                throw error
            }
        },
        .clientStreaming(TestMethods.upload) { (requests: RequestStream<EchoRequest>, _) in
            var count: UInt32 = 0
            var bytes: UInt64 = 0
            for try await request in requests {
                count += 1
                bytes += UInt64(request.payload.count)
            }
            return EchoResponse(messagesReceived: count, bytesReceived: bytes)
        },
        .bidirectionalStreaming(TestMethods.chat) { (requests: RequestStream<EchoRequest>, _, writer: ResponseWriter<EchoResponse>) in
            var sequence: UInt32 = 0
            for try await request in requests {
                try await writer.write(EchoResponse(payload: request.payload, sequence: sequence))
                sequence += 1
            }
        },
        .unary(TestMethods.fail) { (request: EchoRequest, _) -> EchoResponse in
            throw WireStatus(.failedPrecondition, "no model: \(tag(request))")
        },
    ]
}

/// Starts a server on a free loopback port, runs `body` with a client for it, then shuts both down.
func withServer<T>(maxFrameSize: Int = defaultMaxFrameSize, limits: WireServer.Limits = .init(),
                   clientConfiguration: WireClient.Configuration = .init(),
                   _ body: (WireServer, WireClient, Probe) async throws -> T) async throws -> T {
    let probe = Probe()
    let server = WireServer(configuration: .init(host: "127.0.0.1", port: 0, maxFrameSize: maxFrameSize, limits: limits), routes: testRoutes(probe))
    let port = try await server.start()
    let client = WireClient(host: "127.0.0.1", port: port, configuration: clientConfiguration)
    do {
        let result = try await body(server, client, probe)
        client.close()
        await server.close()
        return result
    } catch {
        client.close()
        await server.close()
        throw error
    }
}

func statusCode(of body: () async throws -> Void) async -> StatusCode? {
    do {
        try await body()
        return .ok
    } catch {
        return WireStatus.from(error).code
    }
}

/// A bare TCP connection that writes raw bytes and collects the frames the server sends back.
final class RawConnection: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = Frame
    let frames: AsyncStream<Frame>
    private let continuation: AsyncStream<Frame>.Continuation
    private(set) var channel: Channel!

    init() {
        (frames, continuation) = AsyncStream<Frame>.makeStream()
    }

    static func connect(port: Int) async throws -> RawConnection {
        let connection = RawConnection()
        connection.channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([ByteToMessageHandler(FrameDecoder()), connection])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish()
    }

    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
    }

    func send(_ frame: Frame) async throws {
        try await channel.writeAndFlush(frame.encoded(allocator: channel.allocator, maxFrameSize: .max))
    }

    /// Every frame until the server closes the connection (or `timeout` passes).
    func collectUntilClosed(timeout: Double = 3) async -> (frames: [Frame], closed: Bool) {
        await withTaskGroup(of: ([Frame], Bool)?.self) { group in
            group.addTask {
                var all: [Frame] = []
                for await frame in self.frames { all.append(frame) }
                return (all, true)
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeout))
                return nil
            }
            let first = await group.next()!
            group.cancelAll()
            self.channel.close(promise: nil)
            return first ?? ([], false)
        }
    }

    func next() async -> Frame? {
        var iterator = frames.makeAsyncIterator()
        return await iterator.next()
    }
}

/// The server still answers an ordinary call after whatever a test did to it.
func expectStillServing(_ client: WireClient) async throws {
    let answer = try await client.unary(TestMethods.echo, EchoRequest(payload: Data("alive".utf8)), as: EchoResponse.self)
    #expect(answer.payload == Data("alive".utf8))
}
