import ChorusAPI
import ChorusWire
import Foundation
import Testing

/// Bad bytes on a real loopback connection: the offending connection gets a precise status, the server stays up.
@Suite struct MalformedInputTests {
    @Test func fourGiBLengthPrefixGetsGoawayResourceExhausted() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send([0xFF, 0xFF, 0xFF, 0xFF])
            let (frames, closed) = await raw.collectUntilClosed()
            #expect(closed)
            #expect(frames.last?.kind == .goaway)
            #expect(frames.last?.status.code == .resourceExhausted)
            try await expectStillServing(client)
        }
    }

    @Test func garbageBytesGetGoawayInvalidArgument() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send([0, 0, 0, 6, 0xDE, 0xAD, 0xBE, 0xEF, 0xFF, 0xFF])
            let (frames, closed) = await raw.collectUntilClosed()
            #expect(closed)
            #expect(frames.last?.status.code == .invalidArgument)
            try await expectStillServing(client)
        }
    }

    @Test func truncatedFrameThenHangUpLeavesTheServerUp() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send([0, 0, 1, 0, 1, 2, 3])  // says 256 bytes, sends 3
            try await (raw.channel as? WireClient)?.close()
            try await expectStillServing(client)
        }
    }

    @Test func unknownFrameKindFailsOnlyThatStream() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send(Frame(streamID: 5, kind: .unknown(42)))
            let answer = await raw.next()
            #expect(answer?.streamID == 5)
            #expect(answer?.kind == .close)
            #expect(answer?.status.code == .unimplemented)
            // The connection still works: a PING on it is answered.
            try await raw.send(Frame(streamID: 0, kind: .ping, payload: [7]))
            let pong = await raw.next()
            #expect(pong?.kind == .pong && pong?.payloadBytes == [7])
        }
    }

    @Test func malformedRequestPayloadIsInvalidArgument() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send(Frame(streamID: 1, kind: .open, method: TestMethods.echo.path, payload: [0x0A, 0xFF, 0x01], endOfStream: true))
            let answer = await raw.next()
            #expect(answer?.kind == .close)
            #expect(answer?.status.code == .invalidArgument)
            #expect(answer?.status.message.contains("EchoRequest") == true)
        }
    }

    @Test func unaryCallWithoutARequestIsInvalidArgument() async throws {
        try await withServer { _, client, _ in
            let raw = try await RawConnection.connect(port: client.port)
            try await raw.send(Frame(streamID: 1, kind: .open, method: TestMethods.echo.path, endOfStream: true))
            let answer = await raw.next()
            #expect(answer?.status.code == .invalidArgument)
        }
    }

}
