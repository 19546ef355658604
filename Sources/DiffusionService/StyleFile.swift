import ChorusStableDiffusion
import Foundation
import Yams

/// `--styles FILE`: JSON or A1111's styles.csv (read by the model library), or YAML, read here with Yams
/// (the model library takes no packages beyond the foundations):
///
///     styles:
///       - name: watercolor-soft
///         prompt: "soft watercolor of {prompt}, paper texture"
///         negative_prompt: "photo, harsh lines"
///
/// or the list alone. Errors name the file and line, as the other formats' do.
public enum StyleFile {
    public static func load(path: String) throws -> [PromptStyle] {
        let lower = path.lowercased()
        guard lower.hasSuffix(".yaml") || lower.hasSuffix(".yml") else { return try PromptStyleLibrary.load(path: path) }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PromptStyleError.file(path: path, line: 0, problem: "cannot be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PromptStyleError.file(path: path, line: 1, problem: "is not UTF-8")
        }
        return try PromptStyleLibrary.checked(yaml(text, path: path), path: path)
    }

    static func yaml(_ text: String, path: String) throws -> [(line: Int, style: PromptStyle)] {
        func problem(_ node: Node?, _ words: String) -> PromptStyleError {
            .file(path: path, line: node?.mark?.line ?? 1, problem: words)
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            let (line, words) = syntaxError(error)
            throw PromptStyleError.file(path: path, line: line, problem: "not valid YAML (\(words))")
        }
        guard let root else { return [] }
        let list: Node
        if case .mapping(let top) = root {
            guard let styles = top["styles"] else { throw problem(root, "the file has no \"styles\" list") }
            list = styles
        } else {
            list = root
        }
        guard case .sequence(let items) = list else { throw problem(list, "\"styles\" is not a list") }
        return try items.map { item in
            guard case .mapping(let fields) = item else {
                throw problem(item, "a style is not a mapping of name, prompt and negative_prompt")
            }
            func field(_ key: String, required: Bool) throws -> String? {
                guard let value = fields[key] else {
                    if required { throw problem(item, "a style has no \"\(key)\" (each needs \"name\" and \"prompt\")") }
                    return nil
                }
                guard case .scalar(let scalar) = value else { throw problem(value, "\"\(key)\" is not text") }
                return scalar.string
            }
            let style = PromptStyle(name: try field("name", required: true) ?? "", prompt: try field("prompt", required: true) ?? "",
                                    negativePrompt: try field("negative_prompt", required: false) ?? "")
            return (item.mark?.line ?? 1, style)
        }
    }

    /// The line and words of a YAML syntax error.
    static func syntaxError(_ error: YamlError) -> (Int, String) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return (mark.line, problem)
        default:
            return (1, "\(error)")
        }
    }
}
