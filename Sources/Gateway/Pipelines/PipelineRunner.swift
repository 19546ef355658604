import ChorusAPI
import ChorusWire
import Foundation
import NIOCore

extension Gateway {
    /// One finished step: its output as JSON, or the status it failed with.
    public struct StepResult: Sendable {
        public let id: String
        public let status: WireStatus?
        public let outputJSON: String
        /// When the step started and finished, from the pipeline's start.
        public var started: Duration = .zero
        public var finished: Duration = .zero
    }

    /// Runs a pipeline, calling `onStep` as each step finishes. Independent steps run at the same time;
    /// the first failure cancels what is still running and is thrown with its step named. The caller's
    /// deadline covers the whole pipeline; cancelling the caller cancels every running step.
    public func compose(_ request: ComposeRequest, deadline: NIODeadline?,
                        onStep: @escaping @Sendable (StepResult) async throws -> Void) async throws {
        let pipeline = try Pipeline(request, external: externalSteps)
        var outputs: [String: Any] = [:]
        var pending = pipeline.steps
        let clock = ContinuousClock(), start = clock.now
        try await withThrowingTaskGroup(of: (String, Result<Data, WireStatus>, Duration, Duration).self) { group in
            func startReady() throws {
                for step in pending where step.dependencies.isSubset(of: Set(outputs.keys)) {
                    let body = try pipeline.request(for: step, outputs: outputs)
                    pending.removeAll { $0.id == step.id }
                    group.addTask { [self] in
                        let began = clock.now - start
                        do {
                            let output: Data
                            switch step.target {
                            case .method(let method): output = try await self.call(method, json: body, deadline: deadline)
                            case .external(_, let external): output = try await external(body, deadline)
                            }
                            return (step.id, .success(output), began, clock.now - start)
                        } catch {
                            let status = WireStatus.from(error)
                            return (step.id, .failure(WireStatus(status.code, "step '\(step.id)' (\(step.target.name)): \(status.message)")),
                                    began, clock.now - start)
                        }
                    }
                }
            }
            try startReady()
            while let (id, result, began, ended) = try await group.next() {
                switch result {
                case .success(let output):
                    outputs[id] = try JSONSerialization.jsonObject(with: output)
                    try await onStep(StepResult(id: id, status: nil, outputJSON: String(decoding: output, as: UTF8.self), started: began, finished: ended))
                    try startReady()
                case .failure(let status):
                    group.cancelAll()
                    try? await onStep(StepResult(id: id, status: status, outputJSON: "", started: began, finished: ended))
                    throw status
                }
            }
        }
    }

    /// `compose` as a stream of events: one per step as it finishes (a failed step's event carries its
    /// status), then `done`. The wire's Compose and the HTTP front's /v1/pipelines both read this.
    public func composeEvents(_ request: ComposeRequest, deadline: NIODeadline?) -> ResponseStream<ComposeEvent> {
        let (events, continuation) = AsyncThrowingStream<ComposeEvent, Error>.makeStream()
        let task = Task {
            do {
                try await compose(request, deadline: deadline) { step in
                    continuation.yield(ComposeEvent(stepId: step.id, statusCode: step.status?.code.rawValue ?? 0,
                                                    statusMessage: step.status?.message ?? "", outputJson: step.outputJSON,
                                                    startedMs: step.started.milliseconds, finishedMs: step.finished.milliseconds))
                }
                continuation.yield(ComposeEvent(done: true))
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return ResponseStream(events, cancel: { task.cancel() })
    }

    /// What every service has loaded, asked of one healthy replica each.
    public func listModels() async -> ListModelsResponse {
        var models: [ModelInfo] = []
        for pool in pools.values {
            guard let replica = pool.candidates().first else { continue }
            if let answer = try? await HealthClient(replica.client, service: pool.service).listModels(timeout: .seconds(1)) {
                models += answer.models
            }
        }
        return ListModelsResponse(models: models)
    }

    /// One call to a healthy replica of the method's service; a server stream's answer is its last
    /// message with every message under "events", and, for a stream of text pieces (Chat), "text" is
    /// their concatenation: the whole reply.
    func call(_ method: AnyMethod, json: Data, deadline: NIODeadline?) async throws -> Data {
        let path = method.descriptor.path
        let payload: [UInt8]
        do {
            payload = try method.encodeRequest(json)
        } catch {
            throw WireStatus(.invalidArgument, "the request does not fit \(method.requestType): \(jsonErrorDescription(error))")
        }
        // The same router as every other call: a replica that is down or refuses is passed over, and the
        // call is counted in the metrics there.
        let upstream = try await router.open(path, options: CallOptions(deadline: deadline), first: ByteBuffer(bytes: payload), endOfStream: true)
        var messages: [[UInt8]] = []
        try await withTaskCancellationHandler {
            for try await part in upstream.responses { messages.append(part.bytes) }
        } onCancel: {
            upstream.cancel()
        }
        if method.descriptor.kind == .unary {
            guard let answer = messages.last else { throw WireStatus(.internal, "\(path) answered nothing") }
            return try method.decodeResponse(answer)
        }
        let events = try messages.map { try JSONSerialization.jsonObject(with: method.decodeResponse($0)) }
        var output = (events.last as? [String: Any]) ?? [:]
        output["events"] = events
        let pieces = events.compactMap { ($0 as? [String: Any])?["text"] as? String }
        if !pieces.isEmpty { output["text"] = pieces.joined() }
        return try JSONSerialization.data(withJSONObject: output)
    }
}

extension Duration {
    var milliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}
