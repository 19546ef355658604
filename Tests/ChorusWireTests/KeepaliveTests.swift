import ChorusAPI
import ChorusWire
import Foundation
import NIOCore
import NIOPosix
import Testing

/// A peer that accepts connections and then never says a word.
final class SilentPeer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}

@Suite struct KeepaliveTests {
    @Test func aPeerThatStopsAnsweringPingsIsDisconnected() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SilentPeer()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let client = WireClient(host: "127.0.0.1", port: listener.localAddress!.port!,
                                configuration: .init(keepaliveInterval: .milliseconds(100), keepaliveTimeout: .milliseconds(100)))
        defer { client.close() }
        let started = Date()
        do {
            // No deadline: only the keepalive can end this call.
            _ = try await client.unary(TestMethods.echo, EchoRequest(), as: EchoResponse.self)
            Issue.record("the silent peer answered")
        } catch let status as WireStatus {
            #expect(status.code == .unavailable)
        }
        #expect(Date().timeIntervalSince(started) < 2)
    }
}
