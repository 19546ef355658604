import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
@testable import Gateway
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Testing

/// Media-sized messages on loopback, directly and through a gateway in front of the service: every size
/// from nothing to the frame limit arrives byte for byte in each call shape, and a reader that does not
/// keep up holds the sender back instead of growing memory.
@Suite(.serialized) struct LargeMessageTests {
    static let sizes = [0, 1, 64 << 10, 1 << 20, 16 << 20]

    @Test func everySizeRoundTripsByteExactDirectlyAndThroughTheGateway() async throws {
        let stack = try await MediaStack.start()
        defer { Task { await stack.stop() } }
        for (path, client) in [("direct", stack.direct), ("gateway", stack.viaGateway)] {
            for size in Self.sizes {
                let payload = pattern(size, seed: size)
                let unary = try await client.echo(EchoRequest(payload: payload))
                #expect(unary.payload == payload, "unary \(size) B \(path)")

                var streamed: [Data] = []
                for try await answer in client.echoStream(EchoRequest(payload: payload, count: 3)) { streamed.append(answer.payload) }
                #expect(streamed.count == 3 && streamed.allSatisfy { $0 == payload }, "server stream of \(size) B \(path)")

                let chunks = [payload, pattern(size / 2, seed: 7), Data()]
                let upload = try await client.echoUpload(AsyncStreamOf(chunks.map { EchoRequest(payload: $0) }))
                #expect(upload.payload == chunks.reduce(Data(), +), "client stream of \(size) B \(path)")
                #expect(upload.messagesReceived == 3)
            }
        }
    }

    @Test func aFrameOfExactlyTheLimitPassesAndOneByteMoreIsRefused() async throws {
        let stack = try await MediaStack.start()
        defer { Task { await stack.stop() } }
        // The caller names its request id, so the gateway forwards the OPEN frame at the size it came.
        let options = CallOptions(metadata: ["request-id": "large-message-test"])
        // Measured near the limit, where the length varints have the width they will have at it.
        let near = defaultMaxFrameSize - 4096
        let overhead = try Self.openFrameSize(payloadBytes: near, options: options) - near
        let fits = defaultMaxFrameSize - overhead
        #expect(try Self.openFrameSize(payloadBytes: fits, options: options) == defaultMaxFrameSize)
        for (path, client) in [("direct", stack.direct), ("gateway", stack.viaGateway)] {
            let payload = pattern(fits, seed: 3)
            let answer = try await client.echo(EchoRequest(payload: payload), options: options)
            #expect(answer.payload == payload, "a request frame of exactly \(defaultMaxFrameSize) B \(path)")
            do {
                _ = try await client.echo(EchoRequest(payload: pattern(fits + 1, seed: 3)), options: options)
                Issue.record("a frame one byte over the limit was sent \(path)")
            } catch let status as WireStatus {
                #expect(status.code == .resourceExhausted, "\(status)")
                #expect(status.message.contains("exceeds the limit of \(defaultMaxFrameSize) bytes"), "\(status)")
            }
        }
    }

    /// A server streaming 16 MiB answers to a caller that takes one every 20 ms: the handler stays a few
    /// answers ahead of the reader, and the process's memory grows by a bounded amount, not by the
    /// 960 MiB the stream carries.
    @Test(arguments: ["direct", "gateway"])
    func aSlowReaderHoldsTheSenderBackAndMemoryStaysBounded(path: String) async throws {
        let stack = try await MediaStack.start()
        defer { Task { await stack.stop() } }
        let client = path == "direct" ? stack.direct : stack.viaGateway
        let count = 60, size = 16 << 20
        let startRSS = residentBytes()
        var peakRSS = startRSS, read = 0, mostAhead = 0
        let payload = pattern(size, seed: 11)
        for try await answer in client.echoStream(EchoRequest(payload: payload, count: UInt32(count))) {
            #expect(answer.payload.count == size && answer.sequence == UInt32(read))
            read += 1
            mostAhead = max(mostAhead, stack.service.written - read)
            peakRSS = max(peakRSS, residentBytes())
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(read == count)
        // Each hop may hold about one answer in its pending write, one in the socket buffers and the
        // reader's budget (8 MiB): a handful, not the whole stream.
        let allowedAhead = path == "direct" ? 6 : 10
        #expect(mostAhead <= allowedAhead, "the handler ran \(mostAhead) answers ahead of the reader \(path)")
        let grownMiB = (peakRSS - startRSS) >> 20
        #expect(grownMiB < 500, "RSS grew by \(grownMiB) MiB while \(count * size >> 20) MiB streamed \(path)")
        print("slow reader \(path): at most \(mostAhead) answers ahead, RSS +\(grownMiB) MiB")
    }

    /// The size of the OPEN frame that carries an Echo request of `payloadBytes`.
    static func openFrameSize(payloadBytes: Int, options: CallOptions) throws -> Int {
        let request = try EchoRequest(payload: Data(count: payloadBytes)).wireBuffer()
        let frame = Frame(streamID: 1, kind: .open, method: Speech.Method.echo.path, metadata: options.metadata,
                          payload: request, endOfStream: true)
        return try frame.encode(allocator: ByteBufferAllocator(), maxFrameSize: .max).count - 4
    }
}

/// Bytes that differ from one position to the next, so a slice shifted or reordered anywhere shows.
func pattern(_ count: Int, seed: Int) -> Data {
    var bytes = [UInt8](repeating: 0, count: count)
    var state = UInt32(truncatingIfNeeded: seed &* 2_654_435_761 | 1)
    for i in 0..<count {
        state = state &* 1_664_525 &+ 1_013_904_223
        bytes[i] = UInt8(truncatingIfNeeded: state >> 24)
    }
    return Data(bytes)
}

/// Resident memory of this process (/proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    guard fields.count > 1, let pages = Int(fields[1]) else { return 0 }
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// A Speech service answering the Echo methods with the bytes it was sent (the upload answers their
/// concatenation), and a gateway in front of it, both on loopback in this process.
struct MediaStack {
    let service: MediaService
    let server: WireServer
    let gatewayServer: WireServer
    let direct: SpeechClient
    let viaGateway: SpeechClient

    static func start() async throws -> MediaStack {
        let logger = Logger(label: "large-messages")
        let service = MediaService()
        let server = WireServer(configuration: .init(port: 0), routes: service.routes, logger: logger)
        let port = try await server.start()
        let gateway = try ChorusGateway(configuration: .init(services: ["speech": ["127.0.0.1:\(port)"]]), logger: logger)
        let gatewayServer = WireServer(configuration: .init(port: 0), routes: gateway.routes, fallback: gateway.forward, loopRelay: gateway.relayOnLoop, logger: logger)
        let gatewayPort = try await gatewayServer.start()
        return MediaStack(service: service, server: server, gatewayServer: gatewayServer,
                          direct: SpeechClient(WireClient(host: "127.0.0.1", port: port)),
                          viaGateway: SpeechClient(WireClient(host: "127.0.0.1", port: gatewayPort)))
    }

    func stop() async {
        (direct.channel as? WireClient)?.close()
        (viaGateway.channel as? WireClient)?.close()
        await gatewayServer.close()
        await server.close()
    }
}

final class MediaService: Sendable {
    private let writtenBox = NIOLockedValueBox(0)
    /// Streamed answers handed to the connection so far.
    var written: Int { writtenBox.withLockedValue { $0 } }

    var routes: [ServerRoute] {
        [
            .unary(Speech.Method.echo) { (request: EchoRequest, _) in
                EchoResponse(payload: request.payload, servedBy: "media")
            },
            .serverStreaming(Speech.Method.echoStream) { [self] (request: EchoRequest, _, writer: ResponseWriter<EchoResponse>) in
                for sequence in 0..<max(1, request.count) {
                    try await writer.write(EchoResponse(payload: request.payload, sequence: sequence))
                    writtenBox.withLockedValue { $0 += 1 }
                }
            },
            .clientStreaming(Speech.Method.echoUpload) { (requests: RequestStream<EchoRequest>, _) in
                var all = Data(), count: UInt32 = 0
                for try await request in requests {
                    all += request.payload
                    count += 1
                }
                return EchoResponse(payload: all, messagesReceived: count, bytesReceived: UInt64(all.count))
            },
            .unary(Speech.Method.health) { (_: HealthRequest, _) in HealthResponse(state: .serving, service: "speech") },
        ]
    }
}
