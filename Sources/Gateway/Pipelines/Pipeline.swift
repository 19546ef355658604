import ChorusAPI
import ChorusWire
import Foundation

/// A small DAG of service calls. Each step is a method and the request fields it sets; a value is a
/// JSON literal or a reference: `$input.NAME`, `$image.N`, `$audio.N`, `$video.N`, or `$STEP.path.to.field` (an
/// earlier step's output, numeric parts indexing lists). A step runs once every step it references has
/// finished, so steps that do not depend on each other run at the same time.
package struct Pipeline {
    package struct Step {
        package let id: String
        let target: Target
        /// (dotted request field, value as written)
        let inputs: [(field: String, value: String)]
        /// The steps whose outputs this one reads.
        let dependencies: Set<String>
    }

    package let steps: [Step]
    let inputs: [String: String]
    let images: [EncodedImage]
    let audio: [Audio]
    let videos: [Data]

    static let maxSteps = 32
    /// List elements a step may set through a field path.
    static let maxListIndex = 64

    /// Resolves a recipe or explicit steps and checks them before anything runs: known methods,
    /// unique ids, references to steps that exist, no cycles.
    /// What a step calls: a service method through the router, or an external step (an upstream model).
    enum Target {
        case method(AnyMethod)
        case external(name: String, ExternalSteps.Step)

        var name: String {
            switch self {
            case .method(let method): return method.descriptor.method
            case .external(let name, _): return name
            }
        }
    }

    package init(_ request: ComposeRequest, external: ExternalSteps? = nil) throws {
        let specs: [PipelineStep]
        var inputs = RecipeInputs(named: Dictionary(request.inputs.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }),
                                  images: request.images.count, videos: request.videos)
        switch (request.recipe.isEmpty, request.steps.isEmpty) {
        case (false, true):
            guard let recipe = Recipes.all[request.recipe] else {
                throw WireStatus(.invalidArgument, "unknown recipe '\(request.recipe)'; recipes: \(Recipes.all.keys.sorted().joined(separator: ", "))")
            }
            specs = try recipe.steps(&inputs)
        case (true, false):
            specs = request.steps
        default:
            throw WireStatus(.invalidArgument, "give a recipe or steps (not both, not neither)")
        }
        guard specs.count <= Self.maxSteps else { throw WireStatus(.invalidArgument, "\(specs.count) steps; the limit is \(Self.maxSteps)") }
        var seen = Set<String>()
        var steps: [Step] = []
        for spec in specs {
            guard !spec.id.isEmpty, !spec.id.contains("."), !Self.sources.contains(spec.id) else {
                throw WireStatus(.invalidArgument, "step id '\(spec.id)' must be non-empty, without dots, and not input/image/audio/video")
            }
            guard seen.insert(spec.id).inserted else { throw WireStatus(.invalidArgument, "two steps are named '\(spec.id)'") }
            let target: Target
            if let step = external?.step(spec.method) {
                target = .external(name: spec.method, step)
            } else if spec.method.hasPrefix("upstream.") {
                throw WireStatus(.invalidArgument, "step '\(spec.id)': \(spec.method) calls an upstream model, and this gateway has none "
                                 + "(start it with --upstreams FILE; its HTTP front serves them)")
            } else {
                guard let method = Self.method(spec.method) else {
                    let upstream = external.map { $0.names.isEmpty ? "" : "; upstream steps: \($0.names.joined(separator: ", "))" } ?? ""
                    throw WireStatus(.invalidArgument, "step '\(spec.id)': unknown method '\(spec.method)' (write /chorus.vision.v1.Vision/Caption or vision.Caption\(upstream))")
                }
                guard method.descriptor.kind == .unary || method.descriptor.kind == .serverStreaming else {
                    throw WireStatus(.invalidArgument, "step '\(spec.id)': \(spec.method) streams requests, which a pipeline step cannot send")
                }
                target = .method(method)
            }
            var dependencies = Set<String>()
            for input in spec.inputs {
                // An empty field would set the whole request to a bare value, which is no message at all.
                guard !input.field.isEmpty, !input.field.split(separator: ".", omittingEmptySubsequences: false).contains(where: \.isEmpty) else {
                    throw WireStatus(.invalidArgument, "step '\(spec.id)': field '\(input.field)' is not a dotted path of names (image.data, params.seed)")
                }
                guard input.value.hasPrefix("$") else { continue }
                let root = String(input.value.dropFirst().prefix { $0 != "." })
                if Self.sources.contains(root) { continue }
                guard specs.contains(where: { $0.id == root }) else {
                    throw WireStatus(.invalidArgument, "step '\(spec.id)' refers to '\(input.value)', but no step is named '\(root)'")
                }
                dependencies.insert(root)
            }
            steps.append(Step(id: spec.id, target: target, inputs: spec.inputs.map { ($0.field, $0.value) }, dependencies: dependencies))
        }
        // Kahn's algorithm: whatever cannot be ordered sits on a cycle.
        var done = Set<String>(), progress = true
        while progress {
            progress = false
            for step in steps where !done.contains(step.id) && step.dependencies.isSubset(of: done) {
                done.insert(step.id)
                progress = true
            }
        }
        if done.count < steps.count {
            throw WireStatus(.invalidArgument, "the steps \(steps.map(\.id).filter { !done.contains($0) }.sorted().joined(separator: ", ")) depend on each other in a cycle")
        }
        self.steps = steps
        self.inputs = inputs.named
        images = request.images
        audio = request.audio
        videos = request.videos
    }

    /// What a reference can name besides a step: the request's own inputs.
    static let sources: Set<String> = ["input", "image", "audio", "video"]

    /// "/chorus.vision.v1.Vision/Caption" or the short "vision.Caption".
    static func method(_ name: String) -> AnyMethod? {
        if let exact = ChorusMethods.all[name] { return exact }
        let parts = name.split(separator: ".")
        guard parts.count == 2 else { return nil }
        return ChorusMethods.all.values.first {
            $0.descriptor.method == String(parts[1]) && $0.descriptor.service.lowercased().hasPrefix("chorus.\(parts[0].lowercased()).")
        }
    }

    /// The request of `step` as JSON, with every reference replaced by its value.
    package func request(for step: Step, outputs: [String: Any]) throws -> Data {
        var json: Any = [String: Any]()
        for (field, value) in step.inputs {
            json = try Self.setting(field.split(separator: ".").map(String.init), to: resolve(value, step: step.id, outputs: outputs), in: json)
        }
        // Foundation's fatalError for a top-level value that is neither object nor array: never reach it.
        guard JSONSerialization.isValidJSONObject(json) else {
            throw WireStatus(.invalidArgument, "step '\(step.id)': its inputs do not make a JSON object")
        }
        return try JSONSerialization.data(withJSONObject: json)
    }

    func resolve(_ value: String, step: String, outputs: [String: Any]) throws -> Any {
        guard value.hasPrefix("$") else {
            // A JSON literal; anything that does not parse is taken as a plain string.
            return (try? JSONSerialization.jsonObject(with: Data(value.utf8), options: [.fragmentsAllowed])) ?? value
        }
        let path = value.dropFirst().split(separator: ".").map(String.init)
        func missing(_ what: String) -> WireStatus { WireStatus(.invalidArgument, "step '\(step)': \(value) — \(what)") }
        switch path.first {
        case "input":
            guard path.count == 2, let text = inputs[path[1]] else { throw missing("no input named '\(path.dropFirst().joined(separator: "."))'") }
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])) ?? text
        case "image":
            guard (2...3).contains(path.count), let index = Int(path[1]), images.indices.contains(index) else {  // checked: Int(String) is nil past Int
                throw missing("the request has \(images.count) images")
            }
            if path.count == 3 {
                // `$image.N.data_url`: the image as an `image_url` an upstream model takes (OpenAI's data URL).
                guard path[2] == "data_url" else { throw missing("an image is $image.N (its bytes) or $image.N.data_url") }
                return "data:\(Self.mimeType(images[index].data));base64," + images[index].data.base64EncodedString()
            }
            return images[index].data.base64EncodedString()
        case "video":
            guard path.count == 2, let index = Int(path[1]), videos.indices.contains(index) else { throw missing("the request has \(videos.count) videos") }  // checked: Int(String) is nil past Int
            return videos[index].base64EncodedString()
        case "audio":
            guard path.count == 2, let index = Int(path[1]), audio.indices.contains(index) else { throw missing("the request has \(audio.count) audio inputs") }
            let clip = audio[index]
            if !clip.wav.isEmpty { return ["wav": clip.wav.base64EncodedString()] as [String: Any] }
            let pcm: [String: Any] = ["pcm_f32": clip.pcmF32.base64EncodedString(), "sample_rate": Int(clip.sampleRate), "channels": Int(clip.channels)]
            return pcm
        default:
            var current: Any? = outputs[path[0]]
            for key in path.dropFirst() {
                if let list = current as? [Any], let index = Int(key) {
                    current = list.indices.contains(index) ? list[index] : nil
                } else {
                    current = (current as? [String: Any])?[key]
                }
            }
            guard let current else { throw missing("the output of '\(path[0])' has no \(path.dropFirst().joined(separator: "."))") }
            return current
        }
    }

    /// The image type of encoded bytes, from their signature (what a data URL names).
    static func mimeType(_ data: Data) -> String {
        if data.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return "image/png" }
        if data.starts(with: [0xFF, 0xD8, 0xFF]) { return "image/jpeg" }
        if data.starts(with: Array("GIF8".utf8)) { return "image/gif" }
        if data.count >= 12, data.starts(with: Array("RIFF".utf8)), data.dropFirst(8).starts(with: Array("WEBP".utf8)) { return "image/webp" }
        return "application/octet-stream"
    }

    /// A numeric part indexes a list (`messages.0.parts.0.text`), which grows one element at a time.
    static func setting(_ path: [String], to value: Any, in json: Any) throws -> Any {
        guard let key = path.first else { return value }
        if let index = Int(key), index >= 0 {  // checked: Int(String) answers nil for what does not fit
            // A list not yet set arrives as the empty object every missing field starts from.
            guard var list = json as? [Any] ?? ((json as? [String: Any])?.isEmpty == true ? [] : nil) else {
                throw WireStatus(.invalidArgument, "field path indexes [\(index)] into a value that is not a list")
            }
            guard index <= list.count, index < maxListIndex else {
                throw WireStatus(.invalidArgument, "field path sets [\(index)] of a list of \(list.count): set the elements in order (at most \(maxListIndex))")
            }
            let element = try setting(Array(path.dropFirst()), to: value, in: index < list.count ? list[index] : [String: Any]())
            if index < list.count { list[index] = element } else { list.append(element) }
            return list
        }
        guard var object = json as? [String: Any] else { throw WireStatus(.invalidArgument, "field path crosses a value that is not an object at '\(key)'") }
        object[key] = try setting(Array(path.dropFirst()), to: value, in: object[key] ?? [String: Any]())
        return object
    }
}
