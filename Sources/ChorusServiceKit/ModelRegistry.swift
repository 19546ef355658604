import ChorusAPI
import ChorusInput
import ChorusWire
import Foundation
import NIOConcurrencyHelpers

/// One kind of model a service loads: how to tell its folder (or file) and how to load it. A path may
/// hold several models of a kind (a folder of Piper voices), each under its own name.
public struct ModelKind: Sendable {
    /// One model read from a path: its name, the model, and what ListModels says of it.
    public struct Loaded: Sendable {
        public let name: String
        public let model: any Sendable
        public let info: ModelInfo

        /// `info` needs no name, kind, device or load time: the registry fills them in.
        public init(name: String, model: any Sendable, info: ModelInfo) {
            self.name = name
            self.model = model
            self.info = info
        }
    }

    public let name: String
    public let recognizes: @Sendable (_ path: String) -> Bool
    /// Loads what `path` holds; `name` is the name asked for (the folder's name when none was).
    public let load: @Sendable (_ name: String, _ path: String) throws -> [Loaded]

    public init(_ name: String, recognizes: @escaping @Sendable (String) -> Bool,
                load: @escaping @Sendable (String, String) throws -> [Loaded]) {
        self.name = name
        self.recognizes = recognizes
        self.load = load
    }
}

/// A service's loaded models by name, of the kinds it knows: filled from `--models` at start, changed
/// by LoadModel and UnloadModel at run time, listed by ListModels (through the runtime). A call keeps
/// the model it took, so unloading frees the memory once the calls using it have finished. Models are
/// whatever each kind loads (an engine of a model library); the service reads them back by type.
public final class ModelRegistry: Sendable {
    public let runtime: ServiceRuntime
    public let kinds: [ModelKind]
    private let entries = NIOLockedValueBox<[String: (kind: String, model: any Sendable)]>([:])

    public init(runtime: ServiceRuntime, kinds: [ModelKind]) {
        self.runtime = runtime
        self.kinds = kinds
    }

    // MARK: reading

    /// The model called `name`, if one of type `Model` is loaded under it.
    public func model<Model>(named name: String, as type: Model.Type) -> Model? {
        entries.withLockedValue { $0[name]?.model as? Model }
    }

    /// Every loaded model of type `Model` by name.
    public func models<Model>(_ type: Model.Type) -> [String: Model] {
        entries.withLockedValue { $0.compactMapValues { $0.model as? Model } }
    }

    public var names: [String] { entries.withLockedValue { $0.keys.sorted() } }

    // MARK: loading

    /// Loads every subfolder (and file) of `folder` that a kind recognises, under its own name; with
    /// `includingFolder`, the folder itself too (a models folder that is one model). A folder that fails to
    /// load is logged and skipped.
    public func scan(_ folder: String, includingFolder: Bool = false) throws {
        var paths = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            .filter { !$0.hasPrefix(".") }
            .map { ($0, (folder as NSString).appendingPathComponent($0)) }
        if includingFolder { paths.append(((folder as NSString).lastPathComponent, folder)) }
        for (name, path) in paths {
            for kind in kinds where kind.recognizes(path) {
                // One folder that does not load (corrupt, or a format this build cannot run yet) is logged
                // and skipped: the service starts with the others.
                do {
                    _ = try load(kind, name: name, path: path)
                } catch {
                    runtime.logger.error("\(WireStatus.from(error).message); the \(runtime.service) service starts without it")
                }
            }
        }
    }

    /// LoadModel: `path` as `kind` (or whichever kind recognises it) under `name` (or the path's last
    /// component). A model already loaded under a name is replaced.
    public func load(name: String, path: String, kind: String?) throws -> [ModelInfo] {
        guard !path.isEmpty else { throw WireStatus(.invalidArgument, "the request has no path") }
        let name = name.isEmpty ? (path as NSString).lastPathComponent : name
        _ = try Checked.name(name, "model name")
        guard FileManager.default.fileExists(atPath: path) else {
            throw WireStatus(.notFound, "\(path) does not exist on the \(runtime.service) service's machine")
        }
        let known = kinds.map(\.name).joined(separator: ", ")
        let chosen: ModelKind
        if let kind, !kind.isEmpty {
            guard let found = kinds.first(where: { $0.name == kind }) else {
                throw WireStatus(.invalidArgument, "kind '\(kind)' is not one the \(runtime.service) service loads (\(known))")
            }
            chosen = found
        } else {
            guard let found = kinds.first(where: { $0.recognizes(path) }) else {
                throw WireStatus(.invalidArgument, "\(path) holds no model the \(runtime.service) service loads (\(known))")
            }
            chosen = found
        }
        return try load(chosen, name: name, path: path)
    }

    private func load(_ kind: ModelKind, name: String, path: String) throws -> [ModelInfo] {
        let started = Date()
        let residentBefore = ProcessMemory.residentBytes
        let loaded: [ModelKind.Loaded]
        do {
            loaded = try kind.load(name, path)
        } catch let status as WireStatus {
            throw status
        } catch {
            throw WireStatus(.failedPrecondition, "\(path) looks like a \(kind.name) model but did not load: \(error)")
        }
        guard !loaded.isEmpty else { throw WireStatus(.invalidArgument, "\(path) holds no \(kind.name) model") }
        let seconds = Date().timeIntervalSince(started)
        let grown = Int64(clamping: ProcessMemory.residentBytes) - Int64(clamping: residentBefore)
        var infos: [ModelInfo] = []
        for entry in loaded {
            var info = entry.info
            info.name = entry.name
            info.kind = info.kind.isEmpty ? kind.name : info.kind
            info.device = runtime.options.device
            if info.source.isEmpty { info.source = path }
            info.details.append(KeyValue(key: "load_seconds", value: String(format: "%.2f", seconds)))
            let replaced = entries.withLockedValue { entries in
                defer { entries[entry.name] = (kind.name, entry.model) }
                return entries[entry.name] != nil
            }
            runtime.addModel(info)
            infos.append(info)
            runtime.logger.info("\(replaced ? "replaced" : "loaded") \(info.kind) model '\(entry.name)' from \(info.source) in \(String(format: "%.2f", seconds)) s (resident memory \(grown >= 0 ? "+" : "")\(grown >> 20) MiB, now \(ProcessMemory.residentBytes >> 20) MiB)")
        }
        return infos
    }

    /// A model loaded by the caller (tests, benchmarks), listed like any other.
    public func add(_ name: String, kind: String, model: any Sendable, info: ModelInfo) {
        var info = info
        info.name = name
        if info.kind.isEmpty { info.kind = kind }
        info.device = runtime.options.device
        entries.withLockedValue { $0[name] = (kind, model) }
        runtime.addModel(info)
    }

    /// UnloadModel: forgets `name`; its memory is freed when the last call using it finishes.
    public func unload(_ name: String) throws {
        let removed = entries.withLockedValue { $0.removeValue(forKey: name) } != nil
        guard removed, runtime.removeModel(named: name) else {
            throw WireStatus(.notFound, "no model named '\(name)' is loaded; ListModels shows what is")
        }
        let before = ProcessMemory.residentBytes
        ProcessMemory.returnFreedMemory()
        runtime.logger.info("unloaded model '\(name)' (resident memory \(before >> 20) → \(ProcessMemory.residentBytes >> 20) MiB)")
    }
}

/// LoadModel and UnloadModel, the same for every service that keeps its models in a registry.
public protocol ModelLoadingHandler: Sendable {
    var registry: ModelRegistry { get }
    /// Where loading runs: a compute thread, so Health and Status answer while weights are read.
    var compute: ComputeQueue { get }
}

extension ModelLoadingHandler {
    public func loadModel(_ request: LoadModelRequest, context: CallContext) async throws -> LoadModelResponse {
        let registry = self.registry
        let models = try await compute.run { _ in
            try registry.load(name: request.name, path: request.path, kind: request.kind.isEmpty ? nil : request.kind)
        }
        return LoadModelResponse(models: models)
    }

    public func unloadModel(_ request: UnloadModelRequest, context: CallContext) async throws -> UnloadModelResponse {
        try registry.unload(request.name)
        return UnloadModelResponse(unloaded: true)
    }
}
