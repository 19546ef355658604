import ChorusAPI
import ChorusTestSupport
import ChorusWire
import Foundation
import NIOCore
import Testing

/// Each service as its own process, over the real wire.
@Suite(.serialized) struct ServiceProcessTests {
    @Test func modelMethodsAnswerFailedPreconditionNamingTheModel() async throws {
        for (service, check) in [("speech", "Whisper"), ("vision", "LLaVA"), ("diffusion", "diffusion")] {
            let (process, address) = try await ChorusProcess.serve([service, "--port", "0"])
            let client = try WireClient(address: address)
            defer { client.close() }
            let health = try await client.unary(MethodDescriptor(service: Gateway.serviceNameFor(service), method: "Health", kind: .unary),
                                                HealthRequest(), as: HealthResponse.self)
            #expect(health.state == .serving && health.service == service)
            do {
                switch service {
                case "speech":
                    for try await _ in SpeechClient(client).transcribe(TranscribeRequest()) {}
                case "vision":
                    _ = try await VisionClient(client).caption(CaptionRequest())
                default:
                    for try await _ in DiffusionClient(client).textToImage(TextToImageRequest()) {}
                }
                Issue.record("\(service) answered a model call without a model")
            } catch let status as WireStatus {
                #expect(status.code == .failedPrecondition)
                #expect(status.message.contains(check), "\(status.message)")
            }
            process.signal(SIGTERM)
            #expect(await process.waitForExit() == 0)
        }
    }

    @Test func statusMeasuresMemoryInFlightAndQueue() async throws {
        let (process, address) = try await ChorusProcess.serve(["speech", "--port", "0", "--max-concurrency", "1", "--max-queue", "2"])
        defer { process.signal(SIGKILL) }
        let client = SpeechClient(try WireClient(address: address))
        defer { (client.channel as? WireClient)?.close() }
        let slow = (0..<3).map { _ in
            Task { try await client.echo(EchoRequest(delayMs: 1500)) }
        }
        // One echo holds the only slot for 1.5 s and the other two wait in the queue: ask until the
        // service says so (each Status call is in flight itself, so four calls are in flight then).
        var status = try await client.status(StatusRequest())
        let queued = try await eventually {
            status = try await client.status(StatusRequest())
            return status.queueDepth == 2 && status.inFlight == 4
        }
        #expect(queued, "two echoes queued behind the running one: \(status.inFlight) in flight, \(status.queueDepth) queued")
        #expect(status.residentBytes > 1 << 20)
        #expect(status.peakResidentBytes >= status.residentBytes)
        #expect(status.inFlight == 4, "three echoes and this Status call")
        #expect(status.queueDepth == 2)
        #expect(status.pid == UInt32(process.pid))
        // The queue is full: one more model call is refused instead of waiting.
        do {
            _ = try await client.echo(EchoRequest(delayMs: 10))
            Issue.record("expected RESOURCE_EXHAUSTED")
        } catch let error as WireStatus {
            #expect(error.code == .resourceExhausted)
            #expect(error.message.contains("--max-queue 2"))
        }
        for task in slow { _ = try await task.value }
        let after = try await client.status(StatusRequest())
        #expect(after.inFlight == 1 && after.queueDepth == 0)
        #expect(after.callsTotal >= 5 && after.callsFailed >= 1)
    }

    @Test func sigtermDrainsOpenCallsThenExits() async throws {
        let (process, address) = try await ChorusProcess.serve(["speech", "--port", "0"])
        let client = SpeechClient(try WireClient(address: address))
        defer { (client.channel as? WireClient)?.close() }
        let slow = Task { try await client.echo(EchoRequest(payload: Data("finish me".utf8), delayMs: 2000)) }
        // SIGTERM only once the echo is open on the service (the Status call asking counts itself),
        // so it is a call the drain must let finish; the echo's 2 s leave time to see it.
        let echoOpen = try await eventually { try await client.status(StatusRequest()).inFlight == 2 }
        #expect(echoOpen, "the echo reached the service before SIGTERM")
        process.signal(SIGTERM)
        try await process.waitForLine(containing: "draining")
        #expect(try await slow.value.payload == Data("finish me".utf8))
        #expect(await process.waitForExit(timeout: 5) == 0)
        let refused = try? await client.health(HealthRequest(), options: CallOptions(timeout: .seconds(1)))
        #expect(refused == nil)
    }

    @Test func invalidFlagsAreExplained() async throws {
        let (status, output) = try await ChorusProcess.run(["speech", "--device", "cuda:0", "--port", "0"])
        #expect(status != 0)
        #expect(output.contains("no CUDA backend"))
        let (missing, text) = try await ChorusProcess.run(["speech", "--models", "/nonexistent/models", "--port", "0"])
        #expect(missing != 0)
        #expect(text.contains("/nonexistent/models"))
    }
}

extension Gateway {
    static func serviceNameFor(_ service: String) -> String {
        ["speech": Speech.serviceName, "vision": Vision.serviceName, "diffusion": Diffusion.serviceName, "gateway": Gateway.serviceName][service]!
    }
}
