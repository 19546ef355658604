import Foundation

/// A named style: a prompt template and a negative prompt, as AUTOMATIC1111's `styles.csv` and Fooocus's style
/// files hold them. A template with `{prompt}` takes the prompt there; one without is appended after a comma.
public struct PromptStyle: Equatable, Sendable, Codable {
    public var name: String
    public var prompt: String
    public var negativePrompt: String

    public init(name: String, prompt: String, negativePrompt: String = "") {
        (self.name, self.prompt, self.negativePrompt) = (name, prompt, negativePrompt)
    }

    enum CodingKeys: String, CodingKey {
        case name, prompt
        case negativePrompt = "negative_prompt"
    }

    /// A file's style may leave out its negative prompt.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        prompt = try c.decode(String.self, forKey: .prompt)
        negativePrompt = try c.decodeIfPresent(String.self, forKey: .negativePrompt) ?? ""
    }

    /// A1111's `merge_prompts`: the template with `{prompt}` replaced, or prompt and template joined by ", "
    /// (either left out when blank).
    public static func merge(_ template: String, into prompt: String) -> String {
        if template.contains("{prompt}") { return template.replacingOccurrences(of: "{prompt}", with: prompt) }
        return [prompt, template].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }.joined(separator: ", ")
    }
}

public enum PromptStyleError: Error, Equatable, CustomStringConvertible {
    case unknown(String, known: [String])
    case file(path: String, line: Int, problem: String)

    public var description: String {
        switch self {
        case .unknown(let name, let known): "unknown style '\(name)'; the styles are: \(known.joined(separator: ", "))"
        case .file(let path, let line, let problem): "\(path):\(line): \(problem)"
        }
    }
}

/// The styles a service offers: the built-in ones, then a user's file (`--styles FILE`) adding to them or
/// replacing them by name.
public struct PromptStyleLibrary: Sendable {
    public private(set) var styles: [PromptStyle]

    public init(_ styles: [PromptStyle]) { self.styles = styles }

    public var names: [String] { styles.map(\.name) }

    public func style(_ name: String) throws -> PromptStyle {
        guard let style = styles.first(where: { $0.name == name }) else { throw PromptStyleError.unknown(name, known: names) }
        return style
    }

    /// This library with `more` added; a style of a name already here replaces it in place.
    public func adding(_ more: [PromptStyle]) -> PromptStyleLibrary {
        var out = styles
        for style in more {
            if let i = out.firstIndex(where: { $0.name == style.name }) { out[i] = style } else { out.append(style) }
        }
        return PromptStyleLibrary(out)
    }

    /// A1111's `apply_styles_to_prompt` and `apply_negative_styles_to_prompt`: each named style in turn.
    public func apply(_ names: [String], prompt: String, negative: String) throws -> (prompt: String, negative: String) {
        var (p, n) = (prompt, negative)
        for name in names {
            let style = try style(name)
            p = PromptStyle.merge(style.prompt, into: p)
            n = PromptStyle.merge(style.negativePrompt, into: n)
        }
        return (p, n)
    }

    /// A style file: JSON (`{"styles": [{"name": …, "prompt": …, "negative_prompt": …}]}`) or A1111's
    /// `styles.csv` (a `name,prompt,negative_prompt` header, then a style a row, fields quoted as CSV quotes
    /// them). Errors name the file and line.
    public static func load(path: String) throws -> [PromptStyle] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PromptStyleError.file(path: path, line: 0, problem: "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PromptStyleError.file(path: path, line: 1, problem: "is not UTF-8")
        }
        let entries = path.lowercased().hasSuffix(".csv")
            ? try csv(text, path: path)
            : try json(data, text: text, path: path).enumerated().map { (entryLine(index: $0.offset, in: text), $0.element) }
        return try checked(entries, path: path)
    }

    /// A file's styles, each with the line it starts on, checked: every style named, no name twice.
    public static func checked(_ entries: [(line: Int, style: PromptStyle)], path: String) throws -> [PromptStyle] {
        var seen = Set<String>()
        for (line, style) in entries {
            guard !style.name.isEmpty else { throw PromptStyleError.file(path: path, line: line, problem: "a style has no name") }
            guard seen.insert(style.name).inserted else {
                throw PromptStyleError.file(path: path, line: line, problem: "style '\(style.name)' is defined twice")
            }
        }
        return entries.map(\.style)
    }

    private static func json(_ data: Data, text: String, path: String) throws -> [PromptStyle] {
        struct File: Decodable { var styles: [PromptStyle] }
        do {
            return try JSONDecoder().decode(File.self, from: data).styles
        } catch DecodingError.dataCorrupted {
            let (line, detail) = syntaxError(data)
            throw PromptStyleError.file(path: path, line: line, problem: "not valid JSON (\(detail))")
        } catch let DecodingError.keyNotFound(key, context) {
            throw PromptStyleError.file(path: path, line: entryLine(context.codingPath, in: text),
                                        problem: "a style has no \"\(key.stringValue)\" (each needs \"name\" and \"prompt\")")
        } catch let DecodingError.typeMismatch(_, context) {
            throw PromptStyleError.file(path: path, line: entryLine(context.codingPath, in: text),
                                        problem: "\(context.codingPath.map(\.stringValue).joined(separator: ".")) has the wrong type (\(context.debugDescription))")
        } catch {
            throw PromptStyleError.file(path: path, line: 1, problem: "\(error)")
        }
    }

    /// Where JSONSerialization finds the syntax error ("… around line 3, column 7." or "… around character 48."):
    /// the line (else 1) and its words.
    private static func syntaxError(_ data: Data) -> (Int, String) {
        do {
            _ = try JSONSerialization.jsonObject(with: data)
            return (1, "not an object of styles")
        } catch {
            let detail = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String) ?? "\(error)"
            if let range = detail.range(of: "line "), let n = Int(detail[range.upperBound...].prefix { $0.isNumber }) {  // checked: nil past Int
                return (n, detail)
            }
            // Foundation on Linux says "around character N": a byte offset, whose line the newlines before it give.
            if let range = detail.range(of: "character "), let offset = Int(detail[range.upperBound...].prefix { $0.isNumber }) {  // checked: nil past Int
                return (1 + data.prefix(max(0, offset)).filter { $0 == UInt8(ascii: "\n") }.count, detail)
            }
            return (1, detail)
        }
    }

    /// The line where the style of the coding path opens.
    private static func entryLine(_ path: [CodingKey], in text: String) -> Int {
        guard let index = path.compactMap(\.intValue).first else { return 1 }
        return entryLine(index: index, in: text)
    }

    /// The line where style `index` opens: the index-th object two brackets deep.
    private static func entryLine(index: Int, in text: String) -> Int {
        var depth = 0, line = 1, seen = -1, inString = false, escaped = false
        for c in text {
            if c == "\n" { line += 1 }
            if inString {
                if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                continue
            }
            switch c {
            case "\"": inString = true
            case "{", "[":
                depth += 1
                if c == "{", depth == 3 {
                    seen += 1
                    if seen == index { return line }
                }
            case "}", "]": depth -= 1
            default: break
            }
        }
        return 1
    }

    /// A1111's styles.csv: RFC 4180 fields; the header names the columns (name and prompt required).
    private static func csv(_ text: String, path: String) throws -> [(Int, PromptStyle)] {
        var rows: [(line: Int, fields: [String])] = []
        var field = "", fields: [String] = [], quoted = false, line = 1, rowLine = 1
        var chars = Array(text.replacingOccurrences(of: "\r\n", with: "\n"))[...]
        if chars.first == "\u{FEFF}" { chars = chars.dropFirst() }
        while let c = chars.popFirst() {
            if quoted {
                if c == "\"" {
                    if chars.first == "\"" { field.append("\""); chars = chars.dropFirst() } else { quoted = false }
                } else {
                    if c == "\n" { line += 1 }
                    field.append(c)
                }
            } else if c == "\"" && field.isEmpty {
                quoted = true
            } else if c == "," {
                fields.append(field); field = ""
            } else if c == "\n" {
                fields.append(field); field = ""
                if fields != [""] { rows.append((rowLine, fields)) }
                fields = []
                line += 1
                rowLine = line
            } else {
                field.append(c)
            }
        }
        if quoted { throw PromptStyleError.file(path: path, line: rowLine, problem: "a quoted field is not closed") }
        fields.append(field)
        if fields != [""] { rows.append((rowLine, fields)) }
        guard let header = rows.first else { return [] }
        let columns = header.fields.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let name = columns.firstIndex(of: "name"), let prompt = columns.firstIndex(of: "prompt") else {
            throw PromptStyleError.file(path: path, line: header.line, problem: "the header must name the columns name, prompt (and negative_prompt)")
        }
        let negative = columns.firstIndex(of: "negative_prompt")
        return try rows.dropFirst().map { row in
            guard row.fields.count == columns.count else {
                throw PromptStyleError.file(path: path, line: row.line, problem: "\(row.fields.count) fields; the header has \(columns.count)")
            }
            return (row.line, PromptStyle(name: row.fields[name], prompt: row.fields[prompt], negativePrompt: negative.map { row.fields[$0] } ?? ""))
        }
    }
}
