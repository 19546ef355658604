import ChorusAPI
import ChorusWire
import Foundation

/// Health, Status, ListModels and the Echo diagnostics, the same for every service.
/// A service handler adopts this protocol and gets those methods of its generated protocol for free.
public protocol CommonServiceHandler: Sendable {
    var runtime: ServiceRuntime { get }
}

/// Echo sleeps at most this long, so a diagnostic call cannot hold a slot for ever.
let maxEchoDelayMs: UInt32 = 60_000

extension CommonServiceHandler {
    public func health(_ request: HealthRequest, context: CallContext) async throws -> HealthResponse {
        runtime.health()
    }

    public func status(_ request: StatusRequest, context: CallContext) async throws -> ServiceStatus {
        await runtime.status()
    }

    public func listModels(_ request: ListModelsRequest, context: CallContext) async throws -> ListModelsResponse {
        ListModelsResponse(models: runtime.models)
    }

    /// With `delay_ms` the call stands for model work: it takes a slot of the limiter and sleeps.
    /// Without, it is a pure wire round trip (what `chorus bench wire` measures).
    public func echo(_ request: EchoRequest, context: CallContext) async throws -> EchoResponse {
        if request.delayMs > 0 {
            try await runtime.limiter.run {
                try await Task.sleep(for: .milliseconds(Int(min(request.delayMs, maxEchoDelayMs))))
            }
        }
        return EchoResponse(payload: request.payload, servedBy: runtime.identity)
    }

    public func echoStream(_ request: EchoRequest, context: CallContext, responses: ResponseWriter<EchoResponse>) async throws {
        for sequence in 0..<max(1, request.count) {
            if request.delayMs > 0 {
                try await Task.sleep(for: .milliseconds(Int(min(request.delayMs, maxEchoDelayMs))))
            }
            try Task.checkCancellation()
            try await responses.write(EchoResponse(payload: request.payload, servedBy: runtime.identity, sequence: sequence))
        }
    }

    public func echoUpload(_ requests: RequestStream<EchoRequest>, context: CallContext) async throws -> EchoResponse {
        var messages: UInt32 = 0
        var bytes: UInt64 = 0
        for try await request in requests {
            messages += 1
            bytes += UInt64(request.payload.count)
        }
        return EchoResponse(servedBy: runtime.identity, messagesReceived: messages, bytesReceived: bytes)
    }
}
