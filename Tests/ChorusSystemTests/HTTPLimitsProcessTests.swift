import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing

/// The gateway's HTTP front under slow, impatient and too many clients, over real processes: the tiny
/// Stable Diffusion fixture with one slot behind a gateway that relays one call to it at a time.
@Suite(.serialized) struct HTTPLimitsProcessTests {
    struct Stack {
        let diffusion: ChorusProcess
        let diffusionAddress: String
        let gateway: ChorusProcess
        let gatewayAddress: String
        let http: String
        var port: Int { Int(http.split(separator: ":").last ?? "") ?? 0 }

        func stop() {
            gateway.signal(SIGKILL)
            diffusion.signal(SIGKILL)
        }
    }

    static func start() async throws -> Stack {
        let (diffusion, address) = try await ChorusProcess.serve(["diffusion", "--port", "0", "--models", try StableDiffusionProcessTests.models(),
                                                                  "--max-concurrency", "1", "--max-queue", "0"])
        let (gateway, gatewayAddress) = try await ChorusProcess.serve(["gateway", "--port", "0", "--diffusion", address, "--http-port", "0",
                                                                       "--http-head-timeout", "1", "--http-body-timeout", "1",
                                                                       "--max-in-flight-per-service", "1"])
        let line = try await gateway.waitForLine(containing: "OpenAI-compatible HTTP on http://")
        let http = String(line[line.range(of: "http://")!.lowerBound...].split(separator: " ").first!)
        return Stack(diffusion: diffusion, diffusionAddress: address, gateway: gateway, gatewayAddress: gatewayAddress, http: http)
    }

    /// Everything a socket receives until the peer closes it (or `timeout` passes): (bytes, closed).
    /// Runs on its own thread: the read blocks.
    static func readUntilClosed(_ fd: Int32, timeout: Double) async -> (String, Bool) {
        await withCheckedContinuation { done in
            Thread.detachNewThread {
                var received = [UInt8]()
                let giveUp = Date().addingTimeInterval(timeout)
                var buffer = [UInt8](repeating: 0, count: 4096)
                while Date() < giveUp {
                    var waiting = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&waiting, 1, 100) > 0 else { continue }
                    let n = recv(fd, &buffer, buffer.count, 0)
                    if n <= 0 { return done.resume(returning: (String(decoding: received, as: UTF8.self), true)) }
                    received += buffer[0..<n]
                }
                done.resume(returning: (String(decoding: received, as: UTF8.self), false))
            }
        }
    }

    static func socket(port: Int, sending text: String) throws -> Int32 {
        let fd = try connectedSocket(port: port)
        _ = text.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, 0) }
        return fd
    }

    @Test func slowClientsAreCutOffWhileOthersAreServed() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        // 50 slowloris sockets: a head that never ends, and one body that stops after a few bytes.
        let slow = try (0..<50).map { _ in try Self.socket(port: stack.port, sending: "GET /healthz HTTP/1.1\r\nHost: chorus\r\nX-Slow: ") }
        let stalled = try Self.socket(port: stack.port, sending:
            "POST /v1/echo HTTP/1.1\r\nHost: chorus\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"service\"")
        defer { (slow + [stalled]).forEach { close($0) } }

        for _ in 0..<20 {
            let (_, response) = try await URLSession.shared.data(from: URL(string: stack.http + "/healthz")!)
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
        }
        // The head timeout is 1 s: each slow socket is answered 408 and closed well within 15 s.
        for fd in slow {
            let (text, closed) = await Self.readUntilClosed(fd, timeout: 15)
            #expect(closed && text.hasPrefix("HTTP/1.1 408"), "\(text)")
        }
        let (_, closed) = await Self.readUntilClosed(stalled, timeout: 15)
        #expect(closed, "a stalled body keeps its connection")
        #expect(stack.gateway.process.isRunning)
    }

    @Test func overloadIsRefusedAtOnceWithRetryAfterAndHealthStaysQuick() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        // A long generation through the gateway takes its one place for diffusion.
        let diffusion = DiffusionClient(try WireClient(address: stack.gatewayAddress))
        defer { (diffusion.channel as? WireClient)?.close() }
        // 150 steps of eight 64×64 images: minutes in a debug build, a few seconds a step.
        let long = diffusion.textToImage(TextToImageRequest(prompt: "a cat", steps: 150, seed: 1, width: 64, height: 64, numImages: 8),
                                         options: CallOptions(timeout: .seconds(300)))
        var iterator = long.makeAsyncIterator()
        #expect(try await iterator.next()?.progress != nil)

        var request = URLRequest(url: URL(string: stack.http + "/v1/images/generations")!, timeoutInterval: 30)
        request.httpMethod = "POST"
        request.httpBody = Data("{\"prompt\": \"a dog\", \"steps\": 2, \"size\": \"32x32\"}".utf8)
        for _ in 0..<5 {
            let (data, response) = try await URLSession.shared.data(for: request)
            let http = try #require(response as? HTTPURLResponse)
            #expect(http.statusCode == 429 && http.value(forHTTPHeaderField: "Retry-After") == "1", "\(String(decoding: data, as: UTF8.self))")
            #expect(String(decoding: data, as: UTF8.self).contains("--max-in-flight-per-service"))
        }

        // Health and metrics answer quickly while the service computes and calls are being refused.
        var latencies: [Double] = []
        for path in Array(repeating: "/healthz", count: 150) + Array(repeating: "/metrics", count: 50) {
            let started = Date()
            let (_, response) = try await URLSession.shared.data(from: URL(string: stack.http + path)!)
            latencies.append(Date().timeIntervalSince(started))
            #expect((response as? HTTPURLResponse)?.statusCode == 200)
        }
        let p99 = latencies.sorted()[Int(Double(latencies.count) * 0.99) - 1]
        #expect(p99 < 0.05, "p99 \(Int(p99 * 1000)) ms over \(latencies.count) health and metrics requests")
        withExtendedLifetime(iterator) {}
    }

    @Test func aClientThatHangsUpCancelsItsWork() async throws {
        let stack = try await Self.start()
        defer { stack.stop() }
        let service = DiffusionClient(try WireClient(address: stack.diffusionAddress))
        defer { (service.channel as? WireClient)?.close() }
        // Minutes of work in a debug build, a few seconds a step: 150 steps of eight 64×64 images.
        let body = "{\"prompt\": \"a cat\", \"steps\": 150, \"size\": \"64x64\", \"n\": 8, \"seed\": 3}"
        let fd = try Self.socket(port: stack.port, sending:
            "POST /v1/images/generations HTTP/1.1\r\nHost: chorus\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        // In flight on the service: the generation and the Status call asking.
        var busy = false
        let giveUp = Date().addingTimeInterval(30)
        while !busy && Date() < giveUp {
            busy = try await service.status(StatusRequest()).inFlight == 2
            if !busy { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(busy, "the generation never started")
        close(fd)
        var idle = false
        let deadline = Date().addingTimeInterval(30)
        while !idle && Date() < deadline {
            idle = try await service.status(StatusRequest()).inFlight == 1
            if !idle { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(idle, "the service still computes for a client that left")
    }
}
