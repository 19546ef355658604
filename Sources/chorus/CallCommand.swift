import ArgumentParser
import ChorusTLS
import ChorusAPI
import ChorusWire
import Foundation
import NIOCore

struct CallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Call any method from the command line: JSON in, the answers out, for people or for scripts.",
        discussion: """
            METHOD is a full name (/chorus.speech.v1.Speech/Transcribe) or short (speech.Transcribe).
            REQUEST is JSON with the .proto field names; bytes fields are base64, or come from files (--file).
            Client-streaming methods take a JSON array of requests. Use --list to see every method.

            On a terminal, answers are shown for people: a progress bar with steps and ETA for diffusion, segments
            as they are decoded for transcription, tokens as they stream for chat, media as its size. Piped, or
            with --json, every answer (each message of a stream) is one line of JSON. --field and --save pick
            parts of the answers in either case.
            """)

    @Argument(help: "The method to call.")
    var method: String?

    @Argument(help: "The request as JSON (default {}).")
    var request: String?

    @Option(help: "Address of the gateway or a service; $CHORUS_TARGET sets the default.")
    var target = ConnectionDefaults.target

    @Option(name: .customLong("file"), help: "FIELD=PATH: put the file's bytes into a bytes field (dotted path). Repeatable.")
    var files: [String] = []

    @Option(help: "Send a --file of this many MiB or more in chunks, when the method has a chunked twin (speech.Transcribe's is TranscribeUpload).")
    var chunkAbove = 32

    @Option(help: "KiB per chunk of a chunked upload.")
    var chunkKib = 4096

    @Option(help: "Print only this field of each answer (dotted path, numbers index lists); strings print raw.")
    var field: String?

    @Option(name: .customLong("save"), help: "FIELD=PATH: write a bytes field of the answer to a file (e.g. result.images.0.data=terrain.png). Repeatable.")
    var saves: [String] = []

    @Option(help: "Give up after this many milliseconds (the deadline travels with the call).")
    var timeoutMs: Int?

    @Option(name: .customLong("metadata"), help: "KEY=VALUE sent with the call. Repeatable.")
    var metadata: [String] = []

    @Option(help: "Call over TLS, trusting this CA (PEM) for the target's certificate (it listens with --tls-cert).")
    var tlsCa: String?

    @Flag(help: "List every method with its request and response types.")
    var list = false

    @Flag(name: .customLong("json"), help: "One line of JSON per answer even on a terminal (the default when the output is piped).")
    var jsonLines = false

    func run() async throws {
        if list {
            for (path, method) in ChorusMethods.all.sorted(by: { $0.key < $1.key }) {
                print("\(path)  (\(method.requestType)) -> \(method.descriptor.kind == .serverStreaming || method.descriptor.kind == .bidirectionalStreaming ? "stream " : "")\(method.responseType)  [\(method.descriptor.kind.rawValue)]")
            }
            return
        }
        guard let method else { throw ValidationError("name a METHOD (chorus call --list shows them)") }
        let resolved = try Self.resolve(method)
        guard (0...1024).contains(chunkAbove), (1...49152).contains(chunkKib) else {
            throw ValidationError("--chunk-above takes 0 ... 1024 (MiB) and --chunk-kib 1 ... 49152 (48 MiB, under the 64 MiB frame limit)")
        }
        let given = try JSONSerialization.jsonObject(with: Data((request ?? "{}").utf8), options: [.fragmentsAllowed])
        let upload = try ChunkedUpload.plan(resolved, files: files, json: given, above: chunkAbove << 20)
        let json = upload == nil ? try Self.withFiles(files, in: given) : given
        let requests: [Any] = resolved.descriptor.kind == .clientStreaming || resolved.descriptor.kind == .bidirectionalStreaming
            ? ((json as? [Any]) ?? [json]) : [json]
        let payloads = upload != nil ? [] : try requests.map { request -> [UInt8] in
            guard JSONSerialization.isValidJSONObject(request) else { throw ValidationError("the request must be a JSON object (or, for streaming methods, a list of objects)") }
            return try resolved.encodeRequest(JSONSerialization.data(withJSONObject: request))
        }

        var headers: [String: String] = [:]
        for entry in metadata {
            guard let eq = entry.firstIndex(of: "=") else { throw ValidationError("--metadata takes KEY=VALUE, got '\(entry)'") }
            headers[String(entry[..<eq])] = String(entry[entry.index(after: eq)...])
        }
        let options = CallOptions(deadline: timeoutMs.map { .now() + .milliseconds(Int64($0)) }, metadata: headers)
        let client = try WireClient(address: target, configuration: .init(security: try tlsCa.map { try TLS.client(trusting: $0) }))
        defer { client.close() }
        do {
            // People at a terminal get progress and streamed text; pipes and --json get JSON lines.
            var human = field == nil && !jsonLines && isatty(STDOUT_FILENO) == 1 ? HumanRendering() : nil
            if let upload {
                // Printed as Transcribe's last event, so --field and --save name the same fields either way.
                let answer = try TranscribeResult(wireBuffer: await upload.run(client, options: options, chunkBytes: chunkKib << 10))
                try printAnswer(resolved.decodeResponse(TranscribeEvent(result: answer).wireBytes()), human: &human)
                if let tail = human?.finish() { Self.write(tail) }
                return
            }
            let single = resolved.descriptor.kind == .unary || resolved.descriptor.kind == .serverStreaming
            let call = try await client.open(resolved.descriptor.path, options: options,
                                             first: single ? ByteBuffer(bytes: payloads[0]) : nil, endOfStream: single)
            if !single {
                for payload in payloads { try await call.send(payload) }
                try await call.halfClose()
            }
            for try await part in call.responses {
                try printAnswer(resolved.decodeResponse(part.bytes), human: &human)
            }
            if let tail = human?.finish() { Self.write(tail) }
        } catch let status as WireStatus {
            FileHandle.standardError.write(Data("error: \(status)\n".utf8))
            throw ExitCode(1)
        }
    }

    /// `json` with each `--file FIELD=PATH`'s bytes (base64, as JSON carries bytes) at its dotted field.
    static func withFiles(_ files: [String], in json: Any) throws -> Any {
        var json = json
        for file in files {
            guard let eq = file.firstIndex(of: "=") else { throw ValidationError("--file takes FIELD=PATH, got '\(file)'") }
            let path = String(file[..<eq]), location = String(file[file.index(after: eq)...])
            guard let data = FileManager.default.contents(atPath: location) else { throw ValidationError("cannot read '\(location)'") }
            json = try setting(path.split(separator: ".").map(String.init), to: data.base64EncodedString(), in: json)
        }
        return json
    }

    static func resolve(_ name: String) throws -> AnyMethod {
        if let exact = ChorusMethods.all[name] { return exact }
        let parts = name.split(whereSeparator: { $0 == "." || $0 == "/" }).map { $0.lowercased() }
        guard parts.count == 2 else { throw ValidationError("'\(name)' is not a method; try speech.Health or chorus call --list") }
        let matches = ChorusMethods.all.values.filter {
            $0.descriptor.method.lowercased() == parts[1] && $0.descriptor.service.lowercased().split(separator: ".").contains(Substring(parts[0]))
        }
        guard matches.count == 1 else {
            throw ValidationError("'\(name)' matches \(matches.count) methods; chorus call --list shows them all")
        }
        return matches[0]
    }

    /// `json` with `value` put at `path`; numeric parts index lists (an index one past the end appends).
    static func setting(_ path: [String], to value: Any, in json: Any) throws -> Any {
        guard let key = path.first else { return value }
        if var list = json as? [Any], let index = Int(key) {
            guard (0...list.count).contains(index) else {
                throw ValidationError("--file path index \(index) is past the end of a list of \(list.count)")
            }
            let inner = try Self.setting(Array(path.dropFirst()), to: value, in: index < list.count ? list[index] : [String: Any]())
            if index < list.count { list[index] = inner } else { list.append(inner) }
            return list
        }
        guard var object = (json as? [String: Any]) ?? (json is NSNull ? [:] : nil) else {
            throw ValidationError("--file path crosses a value that is not an object at '\(key)'")
        }
        // A missing value becomes a list when the next part indexes one ("texts.0"), an object otherwise.
        let empty: Any = path.count > 1 && Int(path[1]) != nil ? [Any]() : [String: Any]()
        object[key] = try Self.setting(Array(path.dropFirst()), to: value, in: object[key] ?? empty)
        return object
    }

    /// The value at a dotted path; numeric parts index lists.
    private func lookup(_ path: String, in json: Any?) -> Any? {
        var value = json
        for key in path.split(separator: ".") {
            if let list = value as? [Any], let index = Int(key) {
                value = list.indices.contains(index) ? list[index] : nil
            } else {
                value = (value as? [String: Any])?[String(key)]
            }
        }
        return value
    }

    static func write(_ text: String) {
        guard !text.isEmpty else { return }
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    private func printAnswer(_ data: Data, human: inout HumanRendering?) throws {
        let json = try JSONSerialization.jsonObject(with: data)
        for save in saves {
            guard let equals = save.firstIndex(of: "=") else { throw ValidationError("--save takes FIELD=PATH, got '\(save)'") }
            let (path, file) = (String(save[..<equals]), String(save[save.index(after: equals)...]))
            guard let found = lookup(path, in: json) else { continue }  // a streamed message without it
            guard let text = found as? String, let bytes = Data(base64Encoded: text) else {
                throw ValidationError("--save \(path): the answer's field is not a bytes field")
            }
            try bytes.write(to: URL(fileURLWithPath: file))
            FileHandle.standardError.write(Data("wrote \(bytes.count) bytes of \(path) to \(file)\n".utf8))
        }
        guard let field else {
            guard saves.isEmpty else { return }
            if human != nil, let answer = json as? [String: Any] {
                Self.write(human!.render(answer))
            } else {
                let line = try JSONSerialization.data(withJSONObject: json, options: [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed])
                Self.write(String(decoding: line, as: UTF8.self) + "\n")
            }
            return
        }
        let value = lookup(field, in: json)
        switch value {
        case nil: return  // a streamed message without this field (a progress event, say)
        case let text as String: print(text)
        case let other?:
            let encoded = try JSONSerialization.data(withJSONObject: other, options: [.prettyPrinted, .sortedKeys, .fragmentsAllowed])
            print(String(decoding: encoded, as: UTF8.self))
        }
    }
}

extension CallCommand: HasExamples {
    static let examples = [
        "chorus call speech.Synthesize '{\"text\": \"Hello.\"}' --save data=hello.wav",
        "chorus call speech.Transcribe '{\"format\": \"SRT\"}' --file audio.wav=hello.wav --field result.formatted",
        "chorus call diffusion.TextToImage '{\"difficulty\": 60}' --save result.images.0.data=terrain.png",
        "chorus call speech.Transcribe --file audio.wav=hello.wav --json    # JSON lines even on a terminal",
        "chorus call speech.Transcribe --file audio.wav=lecture.wav    # from 32 MiB on, sent in 4 MiB chunks (TranscribeUpload)",
    ]
}
