import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import NIOCore
import Testing

@Suite struct ServerClientTests {
    @Test func twoHundredConcurrentCallsOnOneConnection() async throws {
        try await withServer { _, client, probe in
            let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        let response = try await client.unary(TestMethods.echo, EchoRequest(payload: Data("call-\(i)".utf8), delayMs: UInt32(i % 7)),
                                                              as: EchoResponse.self)
                        return (i, String(decoding: response.payload, as: UTF8.self))
                    }
                }
                var all: [Int: String] = [:]
                for try await (i, text) in group { all[i] = text }
                return all
            }
            #expect(answers.count == 200)
            #expect(answers.allSatisfy { $0.value == "call-\($0.key)" })
            #expect(probe.remoteAddresses.count == 1, "all calls shared one connection")
        }
    }

    @Test func deadlineExceededStopsTheServerWork() async throws {
        try await withServer { server, client, probe in
            let started = Date()
            let code = await statusCode {
                _ = try await client.unary(TestMethods.echo, EchoRequest(payload: Data("slow".utf8), delayMs: 10_000),
                                           as: EchoResponse.self, options: CallOptions(timeout: .milliseconds(50)))
            }
            #expect(code == .deadlineExceeded)
            // Well under the handler's 10 s: the deadline ended the call (a loaded machine may take a second).
            #expect(Date().timeIntervalSince(started) < 5)
            #expect(await probe.eventually { probe.wasCancelled("slow") }, "the server cancelled the handler")
            #expect(await probe.eventually { server.stats.inFlight == 0 })
        }
    }

    @Test func cancelStopsAStreamingCallMidway() async throws {
        try await withServer { server, client, probe in
            let responses = client.serverStreaming(TestMethods.stream, EchoRequest(payload: Data("stream".utf8), delayMs: 20, count: 200),
                                                   as: EchoResponse.self)
            var received = 0
            for try await response in responses {
                #expect(response.sequence == UInt32(received))
                received += 1
                if received == 3 { break }  // dropping the stream cancels the call
            }
            // The handler records its cancellation in the same catch that rethrows out of its loop
            // (sleepRecording), so once it is recorded the handler has stopped for good: no later
            // message can be counted, and no wait is needed to see that none is.
            #expect(await eventually { probe.wasCancelled("stream") }, "CANCEL reached the handler")
            let streamedAtCancel = probe.streamed
            #expect(await eventually { server.stats.inFlight == 0 }, "the server ended the stream")
            #expect(probe.streamed == streamedAtCancel, "no messages after CANCEL")
            #expect(probe.streamed < 10)
        }
    }

    @Test func cancellingTheCallersTaskCancelsTheServerWork() async throws {
        try await withServer { _, client, probe in
            let task = Task {
                try await client.unary(TestMethods.echo, EchoRequest(payload: Data("task".utf8), delayMs: 10_000), as: EchoResponse.self)
            }
            // The handler notes the caller's address first thing: from then on it is in (or about to
            // enter) its sleep, where a cancellation is recorded.
            #expect(await eventually { !probe.remoteAddresses.isEmpty }, "the call reached its handler")
            task.cancel()
            let code = await statusCode { _ = try await task.value }
            #expect(code == .cancelled)
            #expect(await probe.eventually { probe.wasCancelled("task") })
        }
    }

    @Test func unknownMethodIsUnimplemented() async throws {
        try await withServer { _, client, _ in
            let missing = MethodDescriptor(service: "test.Wire", method: "Nope", kind: .unary)
            do {
                _ = try await client.unary(missing, EchoRequest(), as: EchoResponse.self)
                Issue.record("expected UNIMPLEMENTED")
            } catch let status as WireStatus {
                #expect(status.code == .unimplemented)
                #expect(status.message.contains("/test.Wire/Nope"))
            }
        }
    }

    @Test func handlerErrorsKeepTheirStatus() async throws {
        try await withServer { _, client, _ in
            do {
                _ = try await client.unary(TestMethods.fail, EchoRequest(payload: Data("whisper".utf8)), as: EchoResponse.self)
                Issue.record("expected FAILED_PRECONDITION")
            } catch let status as WireStatus {
                #expect(status == WireStatus(.failedPrecondition, "no model: whisper"))
            }
        }
    }

    @Test func clientStreamingAndBidirectionalCalls() async throws {
        try await withServer { _, client, _ in
            let uploads = (1...50).map { EchoRequest(payload: Data(count: $0)) }
            let summary = try await client.clientStreaming(TestMethods.upload, AsyncStreamOf(uploads), as: EchoResponse.self)
            #expect(summary.messagesReceived == 50)
            #expect(summary.bytesReceived == UInt64((1...50).reduce(0, +)))

            let chat = client.bidirectionalStreaming(TestMethods.chat, AsyncStreamOf((0..<5).map { EchoRequest(payload: Data("m\($0)".utf8)) }),
                                                     as: EchoResponse.self)
            var echoed: [String] = []
            for try await message in chat { echoed.append(String(decoding: message.payload, as: UTF8.self)) }
            #expect(echoed == ["m0", "m1", "m2", "m3", "m4"])
        }
    }

    @Test func pingIsAnsweredWithPong() async throws {
        try await withServer { _, client, _ in
            let rtt = try await client.ping()
            #expect(rtt > .zero && rtt < .seconds(1))
        }
    }

    @Test func oversizedMessagesAreRefused() async throws {
        // The client refuses to send a frame over its own limit, without touching the connection ...
        try await withServer(clientConfiguration: .init(maxFrameSize: 1024)) { _, client, _ in
            let code = await statusCode {
                _ = try await client.unary(TestMethods.echo, EchoRequest(payload: Data(count: 4096)), as: EchoResponse.self)
            }
            #expect(code == .resourceExhausted)
            _ = try await client.unary(TestMethods.echo, EchoRequest(payload: Data(count: 10)), as: EchoResponse.self)
        }
        // ... and the server refuses one over its limit with RESOURCE_EXHAUSTED, and stays up.
        try await withServer(maxFrameSize: 1024) { server, client, _ in
            let code = await statusCode {
                _ = try await client.unary(TestMethods.echo, EchoRequest(payload: Data(count: 4096)), as: EchoResponse.self)
            }
            #expect(code == .resourceExhausted)
            let again = try await client.unary(TestMethods.echo, EchoRequest(payload: Data("ok".utf8)), as: EchoResponse.self)
            #expect(again.payload == Data("ok".utf8))
        }
    }

    @Test func largePayloadsRoundTrip() async throws {
        try await withServer { _, client, _ in
            let payload = Data((0..<(16 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let response = try await client.unary(TestMethods.echo, EchoRequest(payload: payload), as: EchoResponse.self)
            #expect(response.payload == payload)
        }
    }

    @Test func clientReconnectsAfterTheServerRestarts() async throws {
        let probe = Probe()
        let first = WireServer(configuration: .init(port: 0), routes: testRoutes(probe))
        let port = try await first.start()
        let client = WireClient(host: "127.0.0.1", port: port)
        defer { client.close() }
        _ = try await client.unary(TestMethods.echo, EchoRequest(), as: EchoResponse.self)
        await first.close()
        let down = await statusCode { _ = try await client.unary(TestMethods.echo, EchoRequest(), as: EchoResponse.self) }
        #expect(down == .unavailable)
        let second = WireServer(configuration: .init(port: port), routes: testRoutes(probe))
        try await second.start()
        defer { Task { await second.close() } }
        let answer = try await client.unary(TestMethods.echo, EchoRequest(payload: Data("back".utf8)), as: EchoResponse.self)
        #expect(answer.payload == Data("back".utf8))
    }

    @Test func drainLetsOpenCallsFinishAndRefusesNewOnes() async throws {
        let probe = Probe()
        let server = WireServer(configuration: .init(port: 0), routes: testRoutes(probe))
        let port = try await server.start()
        let client = WireClient(host: "127.0.0.1", port: port)
        defer { client.close() }
        let slow = Task {
            try await client.unary(TestMethods.echo, EchoRequest(payload: Data("draining".utf8), delayMs: 300), as: EchoResponse.self)
        }
        // Drain only once the call is open on the server (its handler has started), so it is one of
        // the calls the drain lets finish.
        #expect(await eventually { !probe.remoteAddresses.isEmpty }, "the call reached its handler")
        await server.drain(grace: .seconds(5))
        #expect(try await slow.value.payload == Data("draining".utf8), "the open call finished during the drain")
        let after = await statusCode { _ = try await client.unary(TestMethods.echo, EchoRequest(), as: EchoResponse.self) }
        #expect(after == .unavailable)
    }
}
