import ArgumentParser
import ChorusLoad
import Foundation

/// The requests of a load, before they are encoded for the wire or HTTP: the JSON template, and the
/// files (--file, --inputs, --synthetic) that go into its bytes fields (the wire) or its form (HTTP).
struct LoadBody {
    var json: Any
    var files: [(field: String, name: String, bytes: [UInt8])] = []
    /// Seconds of the WAV among the files, for the real-time factor.
    var audioSeconds: Double?

    /// The JSON with each file's bytes, base64, at its field's dotted path (as `chorus call --file`).
    func withFilesInline() throws -> Any {
        try files.reduce(json) { json, file in
            try CallCommand.setting(file.field.split(separator: ".").map(String.init), to: Data(file.bytes).base64EncodedString(), in: json)
        }
    }

    mutating func add(field: String, name: String, bytes: [UInt8]) {
        files.append((field, name, bytes))
        if audioSeconds == nil, bytes.starts(with: Array("RIFF".utf8)) { audioSeconds = WAVSeconds.of(bytes) }
    }

    /// One body per input: the template with --file's files; --inputs cycles a folder's files through
    /// one field, --prompts the lines of a JSONL file, --synthetic adds made-up inputs (four variants).
    static func make(template: String, files: [String], inputs: String?, prompts: String?, synthetic: [String], seed: UInt64) throws -> [LoadBody] {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(template.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ValidationError("the request is not JSON: \(template)")
        }
        guard json is [String: Any] else { throw ValidationError("the request must be a JSON object, got \(template)") }
        var base = LoadBody(json: json)
        for file in files {
            let (field, path) = try Self.pair(file, "--file", "FIELD=PATH")
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read '\(path)'") }
            base.add(field: field, name: (path as NSString).lastPathComponent, bytes: Array(data))
        }
        var folderFiles: [(field: String, path: String)] = []
        if let inputs {
            let (field, folder) = try Self.pair(inputs, "--inputs", "FIELD=DIR")
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else {
                throw ValidationError("--inputs folder '\(folder)' cannot be read")
            }
            folderFiles = names.filter { !$0.hasPrefix(".") }.sorted().map { (field, (folder as NSString).appendingPathComponent($0)) }
            guard !folderFiles.isEmpty else { throw ValidationError("--inputs folder '\(folder)' holds no files") }
        }
        var promptField = "", promptLines: [String] = []
        if let prompts {
            let (field, path) = try Self.pair(prompts, "--prompts", "FIELD=FILE.jsonl")
            promptField = field
            promptLines = try Self.prompts(path)
        }
        let made = try synthetic.map { entry -> (String, SyntheticInput) in
            let (field, spec) = try Self.pair(entry, "--synthetic", "FIELD=KIND:SIZE")
            do { return (field, try SyntheticInput(parsing: spec)) } catch { throw ValidationError("\(error)") }
        }
        let count = max(folderFiles.count, promptLines.count, made.isEmpty ? 1 : 4)
        return try (0..<count).map { i in
            var body = base
            if !folderFiles.isEmpty {
                let (field, path) = folderFiles[i % folderFiles.count]
                guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read '\(path)'") }
                body.add(field: field, name: (path as NSString).lastPathComponent, bytes: Array(data))
            }
            if !promptLines.isEmpty {
                body.json = try CallCommand.setting(promptField.split(separator: ".").map(String.init), to: promptLines[i % promptLines.count], in: body.json)
            }
            for (field, input) in made {
                switch try input.make(variant: i % 4, seed: seed) {
                case .bytes(let bytes, let name, _): body.add(field: field, name: name, bytes: bytes)
                case .text(let text): body.json = try CallCommand.setting(field.split(separator: ".").map(String.init), to: text, in: body.json)
                }
            }
            return body
        }
    }

    /// The prompts of a JSONL file: each line a JSON string, or an object with a "prompt" or "text" string.
    static func prompts(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("--prompts file '\(path)' cannot be read") }
        var prompts: [String] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            guard !line.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
            let value = try? JSONSerialization.jsonObject(with: Data(line.utf8), options: [.fragmentsAllowed])
            if let text = value as? String {
                prompts.append(text)
            } else if let object = value as? [String: Any], let text = (object["prompt"] ?? object["text"]) as? String {
                prompts.append(text)
            } else {
                throw ValidationError("--prompts '\(path)' line \(number + 1) is not a JSON string or an object with a \"prompt\" string")
            }
        }
        guard !prompts.isEmpty else { throw ValidationError("--prompts file '\(path)' holds no prompts") }
        return prompts
    }

    static func pair(_ text: String, _ flag: String, _ shape: String) throws -> (String, String) {
        guard let eq = text.firstIndex(of: "="), eq > text.startIndex else { throw ValidationError("\(flag) takes \(shape), got '\(text)'") }
        return (String(text[..<eq]), String(text[text.index(after: eq)...]))
    }
}
