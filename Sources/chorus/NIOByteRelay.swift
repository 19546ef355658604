import NIOCore
import NIOPosix

/// The event loops' share of `chorus bench wire`'s gateway hop: a relay that passes bytes between the caller's
/// connection and one to the service by NIO channel handlers on the caller's event loop — no frames decoded, no
/// replica chosen, no Swift task — so the hop through it is what the sockets and the event loops cost, and the
/// gateway's hop less this is what its own work costs.
enum NIOByteRelay {
    /// Listens on a free loopback port; each connection gets its own connection to `upstreamPort`. Returns the port
    /// and the listening channel (closing it stops the relay).
    static func start(upstreamPort: Int, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> (port: Int, channel: Channel) {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { inbound in
                let near = Glue()
                return inbound.pipeline.addHandler(near).flatMap {
                    ClientBootstrap(group: inbound.eventLoop)
                        .channelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
                        .channelInitializer { outbound in
                            let far = Glue()
                            far.partner = near
                            near.partner = far
                            return outbound.pipeline.addHandler(far)
                        }
                        .connect(host: "127.0.0.1", port: upstreamPort)
                        .map { _ in }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw RawLoopbackError("the NIO relay has no port") }
        return (port, channel)
    }

    /// One side of a relayed connection: what it reads, its partner writes; a read burst ends with one flush.
    private final class Glue: ChannelInboundHandler, @unchecked Sendable {
        // checked: unchecked Sendable because both sides of a pair live on one event loop and are touched only there.
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        var partner: Glue?
        private var context: ChannelHandlerContext?

        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func handlerRemoved(context: ChannelHandlerContext) {
            self.context = nil
            partner = nil
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            partner?.context?.write(NIOAny(unwrapInboundIn(data)), promise: nil)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            partner?.context?.flush()
        }

        func channelInactive(context: ChannelHandlerContext) {
            partner?.context?.close(promise: nil)
            context.fireChannelInactive()
        }
    }
}
